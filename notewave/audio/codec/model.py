"""A SEANet-style convolutional audio codec with a residual vector quantizer (RVQ).

Mono audio ``[B, 1, N]`` (float32 in [-1, 1] at ``sample_rate`` Hz) -> encoder -> latents
``[B, dim, T]`` at ``frame_rate = sample_rate / hop_length`` Hz (``hop_length = prod(strides)``
samples) -> RVQ (:mod:`notewave.audio.codec.quantize`): ``num_codebooks`` int codes per frame -> decoder.
After SEANet (Tagliasacchi et al. 2020) and EnCodec (Défossez et al. 2022), without the LSTM; the
layers are in :mod:`notewave.audio.codec.layers` (all convolutions weight-normalised). ``encode`` and
``decode`` run a folded copy of them (:mod:`notewave.audio.codec.inference`: plain weights,
channels-last convolutions; the same outputs to float rounding). With ``decoder="fourier"`` the
decoder is a Vocos-style one instead, run as it is (:mod:`notewave.audio.codec.fourier`: ConvNeXt
blocks at the STFT frame rate and an inverse STFT); :meth:`Codec.freeze_codes` trains such a decoder
on the codes of a trained encoder and RVQ, which then stay exactly as they were
(``fingerprint()["codes_hash"]``). Lengths are exact: the input is zero-padded to a multiple of
``hop_length``, so ``encode`` gives ``ceil(N / hop_length)`` frames, ``decode`` ``T * hop_length``
samples.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from notewave.audio.codec.config import CODES_FIELDS, DETAIL_FIELDS, CodecConfig, codebook_count
from notewave.audio.codec.detail import DetailStream
from notewave.audio.codec.fourier import FourierDecoder
from notewave.audio.codec.inference import folded
from notewave.audio.codec.layers import SEANetDecoder, SEANetEncoder, receptive_reach
from notewave.audio.codec.quantize import QuantizerOutput, ResidualVectorQuantizer
from notewave.core.audio_io import AudioLike, load_audio
from notewave.core.checkpoint import load_state, read_checkpoint, write_checkpoint
from notewave.errors import AudioError, CheckpointError, ConfigError
from notewave.paths import DEFAULT_CODEC_CHECKPOINT

CHUNK_SECONDS = 5.0  #: window of chunked encode / decode, in seconds
PathLike = str | os.PathLike[str]


class CodecOutput(NamedTuple):
    """What :meth:`Codec.forward` returns."""

    audio: torch.Tensor  #: reconstruction float32 ``[B, 1, N]`` (the input's N)
    codes: torch.Tensor  #: int64 ``[B, n_q, ceil(N / hop_length)]``
    commit_loss: torch.Tensor  #: float32 scalar RVQ commitment loss
    perplexity: torch.Tensor  #: float32 ``[n_q]`` codebook perplexity in this batch


class Codec(nn.Module):
    """Encoder + RVQ + decoder; see the module docstring.

    Properties: ``sample_rate`` (Hz), ``hop_length`` (samples per frame), ``frame_rate``
    (frames per second), ``num_codebooks`` (all codebooks: the K = ``config.num_codebooks`` main ones,
    then ``config.detail_codebooks`` of a detail stream), ``codebook_size`` (N).
    """

    fast_inference: bool = True  #: encode/decode through the folded copy (False: the modules themselves)

    def __init__(self, config: CodecConfig | None = None):
        super().__init__()
        cfg = self.config = config or CodecConfig()
        self.encoder = SEANetEncoder(cfg)
        self.quantizer = ResidualVectorQuantizer(
            cfg.dim, cfg.num_codebooks, cfg.codebook_size, quantizer_dropout=cfg.quantizer_dropout,
            decay=cfg.ema_decay, dead_code_threshold=cfg.dead_code_threshold,
        )  # fmt: skip
        self.decoder: nn.Module = FourierDecoder(cfg) if cfg.decoder == "fourier" else SEANetDecoder(cfg)
        self.detail = DetailStream(cfg) if cfg.detail_codebooks else None
        self.codes_frozen = False

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        return self.config.sample_rate / self.config.hop_length

    @property
    def num_codebooks(self) -> int:  # all of them: the K main ones, then the detail stream's
        return self.config.total_codebooks

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def num_frames(self, num_samples: int) -> int:  # what encode gives: ceil(num_samples / hop_length)
        return -(-int(num_samples) // self.hop_length)

    def bitrate(self, n_q: int | None = None) -> float:
        """Bitrate in kbps of ``n_q`` codebooks (default all): ``n_q * frame_rate * log2(N) / 1000``.

        Raises:
            ConfigError: ``n_q`` outside 1..:attr:`num_codebooks`.
        """
        return self._n_q(n_q) * self.frame_rate * math.log2(self.codebook_size) / 1000.0

    def _n_q(self, n_q: int | None) -> int:
        return codebook_count(n_q, self.num_codebooks)

    def fingerprint(self) -> dict[str, str]:
        """16 hex digits each: ``config_hash`` and ``weights_hash`` (the whole codec), ``codes_hash``
        (which main codes audio gets, codebooks 1..K: the encoder's weights, the RVQ codebooks and
        :data:`CODES_FIELDS`; not the decoder, the RVQ's training statistics or training settings,
        so two codecs with another decoder on the same codes share it) and, with a detail stream,
        ``detail_hash`` (the same for the detail codebooks: its encoder, codebooks and fields)."""
        config = self.config.to_dict()
        digest, codes, detail = (
            hashlib.sha256(),
            _fields_hash(config, CODES_FIELDS),
            _fields_hash(config, DETAIL_FIELDS),
        )
        for name, tensor in sorted(self.state_dict().items()):
            data = name.encode() + tensor.detach().float().cpu().contiguous().numpy().tobytes()
            digest.update(data)
            if name.startswith("encoder.") or (name.startswith("quantizer.") and name.endswith(".codebook")):
                codes.update(data)
            if name.startswith("detail.encoder.") or (
                name.startswith("detail.") and name.endswith(".codebook")
            ):
                detail.update(data)
        prints = {
            "config_hash": self.config.hash(),
            "weights_hash": digest.hexdigest()[:16],
            "codes_hash": codes.hexdigest()[:16],
        }
        return prints | ({"detail_hash": detail.hexdigest()[:16]} if self.detail is not None else {})

    def freeze_codes(self) -> Codec:
        """Train only the decoder from now on: the encoder and RVQ get no gradients and stay in eval
        mode (no codebook updates), so every main code stays what it was (a detail stream, if any,
        still trains). In training with quantizer dropout, ``forward`` with ``n_q=None`` then draws
        n_q ~ U{1..num_codebooks} for half the batches and uses them all for the others (the
        decoder mostly serves the full rate)."""
        self.codes_frozen = True
        self.encoder.requires_grad_(False)
        self.quantizer.requires_grad_(False)
        return self.train(self.training)

    def train(self, mode: bool = True) -> Codec:
        super().train(mode)
        if self.codes_frozen:
            self.encoder.eval()
            self.quantizer.eval()
        return self

    def chunk_spans(
        self, frames: int, chunk_seconds: float | None = CHUNK_SECONDS, decoder: bool = False,
        detail: bool = True,
    ) -> list[tuple[int, int, int, int]]:  # fmt: skip
        """Frame spans ``(start, stop, lo, hi)`` of a chunked encode (``decoder``: decode) of ``frames``:
        ``[start, stop)``, ``chunk_seconds`` long (``None``: all), is kept of ``[lo, hi)``, which adds the
        receptive field of the encoder (decoder) plus a frame either side; an encode that computes
        detail codes (``detail``, when the codec has a detail stream) also adds the detail encoder's.
        ConfigError if chunk_seconds <= 0.
        """
        if chunk_seconds is not None and not chunk_seconds > 0:
            raise ConfigError(f"chunk_seconds must be positive seconds or None, got {chunk_seconds}")
        chunk = max(1, frames if chunk_seconds is None else round(chunk_seconds * self.frame_rate))
        layers, step = (self.decoder, self.hop_length) if decoder else (self.encoder, 1)
        reach = (
            layers.reach() if isinstance(layers, FourierDecoder) else receptive_reach(layers, step, decoder)
        )
        if self.detail is not None and detail and not decoder:  # it reads the main latents around
            reach += self.detail.encoder.reach()
        ctx, starts = -(-reach // self.hop_length) + 1, range(0, frames, chunk)
        return [(a, min(frames, a + chunk), max(0, a - ctx), min(frames, a + chunk + ctx)) for a in starts]

    def _check_wav(self, wav: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise ConfigError(
                f"audio at {sample_rate} Hz for a {self.sample_rate} Hz codec (encode_audio resamples)"
            )
        if not isinstance(wav, torch.Tensor) or not wav.is_floating_point():
            raise AudioError(f"the waveform must be a float torch.Tensor, got {type(wav).__name__}")
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise AudioError(
                f"the codec takes mono [B, 1, N], got {tuple(wav.shape)} (encode_audio downmixes)"
            )
        if wav.numel() == 0:
            raise AudioError(f"the waveform is empty (shape {tuple(wav.shape)})")
        if not bool(torch.isfinite(wav).all()):
            raise AudioError("the waveform contains NaN or infinite samples")
        return wav.float()

    def _layers(self, layers: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        """``layers``, or its folded copy (no gradients, :attr:`fast_inference` on, no forward hooks)."""
        hooked = layers._forward_hooks or layers._forward_pre_hooks  # hooks see the module's own calls
        fast = self.fast_inference and not torch.is_grad_enabled() and not hooked
        fast = fast and isinstance(layers, nn.Sequential)  # SEANet stacks fold; FourierDecoder runs as is
        return folded(layers) if fast else layers

    def _pad(self, wav: torch.Tensor) -> torch.Tensor:  # zero-padded to whole frames
        return F.pad(wav, (0, self.num_frames(wav.shape[-1]) * self.hop_length - wav.shape[-1]))

    def forward(self, wav: torch.Tensor, n_q: int | None = None) -> CodecOutput:
        """Encode, quantize (training mode: update the codebooks) and decode ``wav [B, 1, N]``.

        ``n_q=None`` uses every codebook (in training with quantizer dropout: the RVQ's own draw of
        1..K main ones; with a detail stream, a random 1..:attr:`num_codebooks`; with frozen codes,
        :meth:`freeze_codes`, that draw half the time). Frozen codes are computed in float32
        (autocast off), as :meth:`encode` gives them.

        Raises:
            AudioError: not ``[B, 1, N]``, empty, NaN/inf samples. ConfigError: ``n_q`` outside
            1..:attr:`num_codebooks`.
        """
        padded, main_k = self._pad(self._check_wav(wav)), self.config.num_codebooks
        dropout = self.training and self.quantizer.quantizer_dropout > 0
        n_q = None if n_q is None else self._n_q(n_q)
        if n_q is None and dropout and (self.codes_frozen or self.detail is not None):
            if not self.codes_frozen or float(torch.rand(())) < 0.5:
                n_q = int(torch.randint(1, self.num_codebooks + 1, (1,)))
        main_n = None if n_q is None else min(n_q, main_k)
        if self.codes_frozen:
            with torch.no_grad(), torch.autocast(padded.device.type, enabled=False):
                q = self.quantizer(self.encoder(padded), main_n)
        else:
            q = self.quantizer(self.encoder(padded), main_n)
        if self.detail is not None:
            q = self._with_detail(q, padded, None if n_q is None else n_q - main_k)
        audio = self.decoder(q.quantized)[..., : wav.shape[-1]]
        return CodecOutput(audio, q.codes, q.commit_loss, q.perplexity)

    def _with_detail(self, q: QuantizerOutput, padded: torch.Tensor, detail_n: int | None) -> QuantizerOutput:
        """``q`` of the main stream with the detail stream's ``detail_n`` codebooks (None: all; <= 0:
        none, zero latents) after it: latents ``[B, dim + detail_dim, T]``, codes and perplexities
        concatenated, the commitment losses added."""
        assert self.detail is not None
        if detail_n is not None and detail_n <= 0:
            zeros = q.quantized.new_zeros(q.quantized.shape[0], self.config.detail_dim, q.quantized.shape[-1])
            return q._replace(quantized=torch.cat([q.quantized, zeros], 1))
        d = self.detail(padded, q.quantized, detail_n)
        return QuantizerOutput(
            torch.cat([q.quantized, d.quantized.to(q.quantized.dtype)], 1), torch.cat([q.codes, d.codes], 1),
            q.commit_loss + d.commit_loss, torch.cat([q.perplexity, d.perplexity]),
        )  # fmt: skip

    @torch.no_grad()
    def encode(
        self, wav: torch.Tensor, n_q: int | None = None, sample_rate: int | None = None,
        chunk_seconds: float | None = CHUNK_SECONDS,
    ) -> torch.Tensor:  # fmt: skip
        """Codes int64 ``[B, n_q, ceil(N / hop_length)]`` of mono audio float ``[B, 1, N]`` in [-1, 1].

        ``n_q``: codebooks, 1..:attr:`num_codebooks` (default all; past the K main ones, the detail
        stream's); ``sample_rate`` (Hz): checked against the codec's if given.
        Long audio is encoded in windows of ``chunk_seconds`` (``None``: at once), each with
        context either side (:meth:`chunk_spans`), so memory stays bounded and the codes
        match a one-shot encode (up to float rounding on near-ties of the nearest code).

        Raises:
            AudioError: not ``[B, 1, N]``, empty, NaN/inf samples.
            ConfigError: another sample rate, ``n_q`` outside 1..:attr:`num_codebooks`,
                ``chunk_seconds`` <= 0.
        """
        wav, hop = self._check_wav(wav, sample_rate), self.hop_length
        device = self.quantizer.layers[0].codebook.device
        frames, n, main_k = self.num_frames(wav.shape[-1]), self._n_q(n_q), self.config.num_codebooks
        codes = []
        for a, b, lo, hi in self.chunk_spans(frames, chunk_seconds, detail=n > main_k):
            chunk = self._pad(wav[..., lo * hop : hi * hop]).to(device)
            latents = self._layers(self.encoder)(chunk)
            if n <= main_k:
                codes.append(self.quantizer.encode(latents[..., a - lo : b - lo], n))
                continue
            main = self.quantizer.encode(latents)  # the whole window: the detail encoder reads around
            assert self.detail is not None
            detail = self.detail.encode(chunk, self.quantizer.decode(main), n - main_k)
            codes.append(torch.cat([main, detail], 1)[..., a - lo : b - lo])
        return torch.cat(codes, -1)

    def decode_chunks(
        self, codes: torch.Tensor, chunk_seconds: float | None = CHUNK_SECONDS
    ) -> Iterator[torch.Tensor]:
        """:meth:`decode` piece by piece: float32 ``[B, 1, frames * hop_length]`` of ``chunk_seconds``
        each (the last may be shorter), in order; the codes are checked before it returns."""
        shape = tuple(getattr(codes, "shape", ()))
        if not isinstance(codes, torch.Tensor) or len(shape) != 3 or not 1 <= shape[1] <= self.num_codebooks:
            raise ConfigError(f"codes must be an int tensor [B, 1..{self.num_codebooks}, T], not {shape}")
        if codes.numel() == 0:
            raise ConfigError(f"codes are empty (shape {shape})")
        with torch.no_grad():  # latents [B, dim, T] are small
            codes, main_k = codes.to(self.quantizer.layers[0].codebook.device), self.config.num_codebooks
            latents = self.quantizer.decode(codes[:, :main_k])
            if self.detail is not None:
                extra = codes[:, main_k:]
                detail = (
                    self.detail.quantizer.decode(extra)
                    if extra.shape[1]
                    else latents.new_zeros(shape[0], self.config.detail_dim, shape[-1])
                )
                latents = torch.cat([latents, detail], 1)
        spans = self.chunk_spans(shape[-1], chunk_seconds, decoder=True)
        return (self._decode_span(latents, *span) for span in spans)

    @torch.no_grad()
    def _decode_span(self, latents: torch.Tensor, a: int, b: int, lo: int, hi: int) -> torch.Tensor:
        wav = self._layers(self.decoder)(latents[..., lo:hi])
        return wav[..., (a - lo) * self.hop_length : (b - lo) * self.hop_length].clamp(-1.0, 1.0)

    def decode(self, codes: torch.Tensor, chunk_seconds: float | None = CHUNK_SECONDS) -> torch.Tensor:
        """Audio float32 ``[B, 1, T * hop_length]`` in [-1, 1] (clamped) of codes int ``[B, n_q, T]``, any
        ``1 <= n_q <=`` :attr:`num_codebooks` (the first n_q codebooks; fewer give coarser audio).
        Long code sequences are decoded in windows of ``chunk_seconds`` with context either side
        (see :meth:`encode`).

        Raises:
            ConfigError: not an integer ``[B, n_q, T]`` tensor, n_q outside 1..:attr:`num_codebooks`,
                codes outside [0, N), T = 0.
        """
        pieces = list(self.decode_chunks(codes, chunk_seconds))
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, -1)

    def save_pretrained(
        self,
        path: PathLike,
        extra_config: dict[str, Any] | None = None,
        extra_files: Callable[[Path], None] | None = None,
        half: bool = False,
    ) -> Path:
        """Write ``model.safetensors`` and ``config.json`` (``kind: "codec"``) to the folder ``path``
        atomically; ``half`` stores float tensors as float16 (loaded back as float32); ``extra_files``
        may add files to the temporary folder first."""
        state = {k: v.half() if half and v.is_floating_point() else v for k, v in self.state_dict().items()}
        config = {**self.config.to_dict(), "weights_dtype": "float16" if half else "float32"}
        config.update(extra_config or {})
        return write_checkpoint(path, state, config, extra=extra_files)

    @classmethod
    def from_pretrained(cls, path: PathLike = DEFAULT_CODEC_CHECKPOINT, map_location: str = "cpu") -> Codec:
        """Load a codec written by :meth:`save_pretrained`, in eval mode (default: the shipped one).

        Raises:
            CheckpointError: missing or corrupt folder, not a codec (``kind``), or weights that do not match.
        """
        tensors, raw = read_checkpoint(path)
        try:
            model = cls(CodecConfig.from_dict(raw))
        except (TypeError, ValueError, ConfigError, CheckpointError) as exc:
            raise CheckpointError(f"checkpoint {path} is not a usable codec: {exc}") from exc
        dtypes = {k: v.dtype for k, v in model.state_dict().items()}
        load_state(model, {k: v.to(dtypes.get(k, v.dtype)) for k, v in tensors.items()}, path)
        model.checkpoint_config = raw
        return model.to(map_location).eval()


def _fields_hash(config: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """A sha256 object started with the JSON of ``config``'s ``keys``."""
    return hashlib.sha256(json.dumps({k: v for k, v in config.items() if k in keys}, sort_keys=True).encode())


def identity_mismatch(recorded: dict[str, Any], mine: dict[str, str]) -> str | None:
    """The first hash of ``recorded`` (a :meth:`Codec.fingerprint` stored with codes or with an audio
    LM) that differs from ``mine`` (the fingerprint of the codec at hand), or ``None`` when the codes
    are the same: ``codes_hash`` where one was recorded (any decoder on the same codes serves), else
    ``config_hash`` and ``weights_hash`` (records written before ``codes_hash`` existed)."""
    keys = ("codes_hash",) if recorded.get("codes_hash") else ("config_hash", "weights_hash")
    return next((k for k in keys if recorded.get(k) and recorded[k] != mine[k]), None)


def encode_audio(
    codec: Codec, audio: AudioLike, sample_rate: int | None = None, n_q: int | None = None,
    offset: float = 0.0, duration: float | None = None,
) -> torch.Tensor:  # fmt: skip
    """Codes int64 ``[1, n_q, T]`` of a file or array, downmixed to mono, resampled to the codec's rate.

    Args:
        audio: a file soundfile reads (WAV, FLAC, OGG, ...) or an array ``[channels, samples]``.
        sample_rate: the rate in Hz of an array (required for arrays).
        n_q: codebooks, 1..``codec.num_codebooks`` (default all, detail ones included).
        offset, duration: seconds to skip / to read (files only; ``None``: to the end).

    Raises:
        AudioError: unreadable, empty or NaN/inf audio, or an array without ``sample_rate``.
    """
    wav, _ = load_audio(audio, codec.sample_rate, True, sample_rate, offset, duration)
    return codec.encode(torch.from_numpy(wav)[None], n_q)

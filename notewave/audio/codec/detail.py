"""A detail stream for the codec: extra codebooks that carry what the main codes lose.

The main stream (SEANet encoder, RVQ of K codebooks; :mod:`notewave.audio.codec.model`) gives each
frame a latent ``[dim]``. The detail stream looks at the audio's STFT log magnitudes *and* the
main stream's quantized latents of the same frames, and writes a second latent ``[detail_dim]``
per frame, quantized by its own RVQ of ``detail_codebooks`` codebooks (same codebook size). The
decoder reads both latents side by side (``dim + detail_dim`` channels; zeros where the detail
codebooks are left out), so codebooks ``1..K`` stay exactly the main stream's codes (an audio LM
trained on them still reads them) and codebooks ``K+1..K+detail_codebooks`` add bitrate, as in a
two-stage residual coder (SoundStream's and EnCodec's RVQ quantize one latent; here the second
stage gets its own encoder, conditioned on the first stage's output, so it can spend its bits
on what the first one missed).

``wav [B, 1, T * hop_length]`` -> STFT (Hann window ``istft_n_fft``, hop ``istft_hop``, centred;
the first ``T * hop_length / istft_hop`` frames) -> ``log(|X| + MAGNITUDE_FLOOR)``, concatenated with the
main latents repeated to that frame rate -> Linear to ``decoder_dim`` + LayerNorm ->
``detail_layers`` ConvNeXt blocks (:class:`~notewave.audio.codec.fourier.ConvNeXtBlock`) ->
LayerNorm -> strided Conv1d back to the codec's frame rate -> ``[B, detail_dim, T]``.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from notewave.audio.codec.fourier import FrameTrunk, TrunkSizes
from notewave.audio.codec.quantize import QuantizerOutput, ResidualVectorQuantizer

#: added to the STFT magnitudes (Hann window of 1280 samples, so a full-scale sine peaks near 320)
#: before the log: about 5x the floor of 16-bit quantization noise (~2e-4 per bin), so audio decoded
#: to float (clean, no floor) and 16-bit audio (a floor) give the same features. At 1e-5 the
#: features of empty bands differed by several nats between the two, and the detail codes of a
#: float-decoded Ogg file were worse than none (session 16).
MAGNITUDE_FLOOR = 1e-3


class DetailSizes(TrunkSizes, Protocol):
    """The fields of :class:`~notewave.audio.codec.config.CodecConfig` the detail stream is built from."""

    dim: int
    codebook_size: int
    detail_codebooks: int
    detail_dim: int
    detail_layers: int
    ema_decay: float
    dead_code_threshold: float


class DetailEncoder(FrameTrunk):
    """``(wav float32 [B, 1, T * hop_length], main latents float32 [B, dim, T]) -> [B, detail_dim, T]``."""

    def __init__(self, cfg: DetailSizes):
        super().__init__(cfg, cfg.detail_layers)
        self.embed = nn.Linear(cfg.istft_n_fft // 2 + 1 + cfg.dim, cfg.decoder_dim)
        self.down = nn.Conv1d(cfg.decoder_dim, cfg.detail_dim, self.repeat, stride=self.repeat)
        self.extra_frames = self.repeat  # the strided down-sampling reads a codec frame's STFT frames

    def forward(self, wav: torch.Tensor, main: torch.Tensor) -> torch.Tensor:
        """Detail latents float32 ``[B, detail_dim, T]`` of ``wav [B, 1, T * hop_length]`` (samples at
        the codec's rate) and the main quantized latents ``main [B, dim, T]``."""
        frames = main.shape[-1] * self.repeat
        if wav.shape[-1] <= self.n_fft // 2:  # the centred STFT's reflect padding needs more samples
            wav = nn.functional.pad(wav, (0, self.n_fft // 2 + 1 - wav.shape[-1]))
        with torch.autocast(wav.device.type, enabled=False):
            spec = torch.stft(
                wav[:, 0].float(), self.n_fft, self.hop, window=self.window, return_complex=True
            )
            features = torch.log(spec[..., :frames].abs() + MAGNITUDE_FLOOR)
        x = torch.cat([features, main.repeat_interleave(self.repeat, dim=-1)], 1)
        return self.down(self.trunk(self.embed(x.transpose(1, 2))).transpose(1, 2))


class DetailStream(nn.Module):
    """The detail encoder and its RVQ (``detail_codebooks`` x ``codebook_size``); see the module docstring."""

    def __init__(self, cfg: DetailSizes):
        super().__init__()
        self.encoder = DetailEncoder(cfg)
        self.quantizer = ResidualVectorQuantizer(
            cfg.detail_dim, cfg.detail_codebooks, cfg.codebook_size, decay=cfg.ema_decay,
            dead_code_threshold=cfg.dead_code_threshold,
        )  # fmt: skip

    def forward(self, wav: torch.Tensor, main: torch.Tensor, n_q: int | None = None) -> QuantizerOutput:
        """Quantized detail latents of ``wav [B, 1, T * hop_length]`` given ``main [B, dim, T]``, with
        the first ``n_q`` detail codebooks (default all); training mode updates the codebooks."""
        return self.quantizer(self.encoder(wav, main), n_q)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor, main: torch.Tensor, n_q: int) -> torch.Tensor:
        """Detail codes int64 ``[B, n_q, T]`` (no updates).

        Raises:
            ConfigError: ``n_q`` outside 1..``detail_codebooks`` (from the RVQ).
        """
        return self.quantizer.encode(self.encoder(wav, main), n_q)

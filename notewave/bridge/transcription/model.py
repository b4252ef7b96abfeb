"""The polyphonic transcription network: an Onsets-and-Frames-style model over log-mel frames.

Reference: C. Hawthorne, E. Elsen, J. Song, A. Roberts, I. Simon, C. Raffel, J. Engel, S. Oore
and D. Eck, "Onsets and Frames: Dual-Objective Piano Transcription", ISMIR 2018
(arXiv:1710.11153). This is a small re-implementation of its ideas, written for CPU budgets:

* Features: 16 kHz mono audio, ``torch.stft`` (Hann window, 2048 samples = 128 ms, hop 512
  samples = 32 ms, so 31.25 frames per second, frame ``t`` centred on sample ``t * 512``),
  magnitude spectrum mapped to 229 mel bands between 30 Hz and 8 kHz (``librosa.filters.mel``,
  triangles of height 1), log compression ``log(mel + 1e-5)``, then per-band standardisation
  with the mean and standard deviation measured on the training data (stored in the checkpoint).
* One shared acoustic stack (the paper has one per head; sharing it makes the model ~3x cheaper):
  three 3x3 convolutions with batch norm and ReLU, frequency max-pooling after the 2nd and
  3rd, then a linear layer to ``d_model`` features per frame (dropout only there: dropout on
  the large convolution maps cost a fifth of a CPU training step).
* Heads over the 88 piano keys (MIDI 21 = A0 .. 108 = C8), all ``[batch, frames, 88]`` logits:
  onset (BiGRU + linear), offset (linear), velocity (linear, sigmoid gives velocity / 127) and
  frame. As in the paper the frame head sees the onset and offset predictions (gradient
  stopped) next to its own acoustic estimate, through a BiGRU, so a note is held only where
  an onset explains it.
* Two additions that made training converge within minutes of one CPU core (measured by
  overfitting one batch: without them the onset head stayed below 0.5 everywhere for 60
  steps): the onset and offset heads also see the frame-to-frame change of the acoustic
  features, the onset and frame heads have linear skip paths around their BiGRUs, and each
  key's onset logit gets a learned multiple (initially 8) of the rise of its own frame
  probability - a direct "a note begins where its frame activation rises" path, which sustained
  timbres (organ, strings, winds) need; re-struck notes are left to the BiGRU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from notewave.bridge.transcription.harmonic import SHIFTS, HarmonicStack, semitone_filterbank
from notewave.core.checkpoint import load_state, read_checkpoint, write_checkpoint
from notewave.errors import CheckpointError, ConfigError

MIN_MIDI = 21  # A0, the lowest piano key
MAX_MIDI = 108  # C8, the highest piano key
N_KEYS = MAX_MIDI - MIN_MIDI + 1
MODEL_KIND = "notewave-transcriber"
HEADS = ("onset", "offset", "frame", "velocity")


@dataclass
class TranscriberConfig:
    """Feature and network sizes of a :class:`Transcriber` (stored as ``config.json``).

    Rates are in Hz, ``n_fft``/``hop_length`` in samples, ``fmin``/``fmax`` in Hz.
    """

    sample_rate: int = 16000
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 229
    fmin: float = 30.0
    fmax: float = 8000.0
    conv_channels: int = 16
    d_model: int = 192
    rnn_hidden: int = 96
    dropout: float = 0.1
    harmonic_channels: int = 0  # 0: no harmonic stack (notewave.bridge.transcription.harmonic)

    def __post_init__(self) -> None:
        if self.hop_length < 1 or self.n_fft < self.hop_length or self.n_mels < 4 or self.sample_rate < 1000:
            raise ConfigError(f"invalid transcriber feature settings: {self}")
        if not 0 < self.fmin < self.fmax <= self.sample_rate / 2:
            raise ConfigError(f"need 0 < fmin < fmax <= sample_rate / 2, got {self.fmin}, {self.fmax}")
        if min(self.conv_channels, self.d_model, self.rnn_hidden) < 1 or not 0 <= self.dropout < 1:
            raise ConfigError(f"invalid transcriber network sizes: {self}")
        if not isinstance(self.harmonic_channels, int) or self.harmonic_channels < 0:
            raise ConfigError(
                f"harmonic_channels must be a whole number >= 0, got {self.harmonic_channels!r}"
            )

    @property
    def frames_per_second(self) -> float:
        """Frame rate: ``sample_rate / hop_length`` (31.25 by default)."""
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return {"kind": MODEL_KIND, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranscriberConfig:
        """Inverse of :meth:`to_dict`; extra keys (training info) are ignored.

        Raises:
            CheckpointError: when ``data`` is not a transcriber config.
        """
        if data.get("kind") != MODEL_KIND:
            raise CheckpointError(f"not a transcriber config (kind={data.get('kind')!r})")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class LogMel(nn.Module):
    """Waveform ``[batch, samples]`` (float32, model rate) -> standardised log-mel ``[batch, frames, mels]``;
    with ``config.harmonic_channels`` the semitone log-spectrum of
    :mod:`~notewave.bridge.transcription.harmonic` follows the mel bands:
    ``[batch, frames, mels + HarmonicStack.n_bins(88)]``.

    With ``center=True`` (inference) the waveform is zero-padded by ``n_fft // 2`` on both sides
    and gives ``1 + samples // hop_length`` frames; with ``center=False`` (training crops that
    already carry that context) it gives ``1 + (samples - n_fft) // hop_length`` frames.
    """

    def __init__(self, cfg: TranscriberConfig):
        super().__init__()
        import librosa

        self.cfg = cfg
        mel = librosa.filters.mel(
            sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, norm=None
        )
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.register_buffer("mel_basis", torch.from_numpy(mel.astype(np.float32)), persistent=False)
        self.register_buffer("feature_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("feature_std", torch.ones(cfg.n_mels))
        if cfg.harmonic_channels:
            lowest, bins = MIN_MIDI + min(SHIFTS), HarmonicStack.n_bins(N_KEYS)
            fb = semitone_filterbank(cfg.sample_rate, cfg.n_fft, lowest, bins)
            self.register_buffer("semitone_basis", torch.from_numpy(fb), persistent=False)

    def magnitude(self, wav: torch.Tensor, center: bool = True) -> torch.Tensor:
        """STFT magnitudes ``[batch, n_fft // 2 + 1, frames]`` of ``wav`` (a full-scale sine peaks near 1)."""
        spec = torch.stft(
            wav.float(),
            self.cfg.n_fft,
            self.cfg.hop_length,
            window=self.window,
            center=center,
            pad_mode="constant",
            return_complex=True,
        ).abs()
        return spec * (2.0 / self.window.sum())

    @staticmethod
    def _log_bands(basis: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.matmul(basis, spec) + 1e-5).transpose(1, 2)  # [batch, frames, bands]

    def log_mel(self, wav: torch.Tensor, center: bool = True) -> torch.Tensor:
        """Un-standardised ``log(mel + 1e-5)`` of ``wav`` ``[batch, samples]``: ``[batch, frames, mels]``."""
        return self._log_bands(self.mel_basis, self.magnitude(wav, center))

    def forward(self, wav: torch.Tensor, center: bool = True) -> torch.Tensor:
        spec = self.magnitude(wav, center)
        mel = (self._log_bands(self.mel_basis, spec) - self.feature_mean) / self.feature_std
        if not self.cfg.harmonic_channels:
            return mel
        return torch.cat([mel, self._log_bands(self.semitone_basis, spec)], -1)


class ConvStack(nn.Module):
    """Log-mel ``[batch, frames, n_mels]`` -> acoustic features ``[batch, frames, d_model]``."""

    def __init__(self, n_mels: int, channels: int, d_model: int, dropout: float):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.conv = nn.Sequential(
            *block(1, channels),
            *block(channels, channels),
            nn.MaxPool2d((1, 2)),
            *block(channels, 2 * channels),
            nn.MaxPool2d((1, 2)),
        )
        self.proj = nn.Sequential(
            nn.Linear(2 * channels * (n_mels // 4), d_model), nn.ReLU(), nn.Dropout(dropout)
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv(mel.unsqueeze(1))  # [B, C, T, F/4]
        return self.proj(x.permute(0, 2, 1, 3).flatten(2))


class BiGRUHead(nn.Module):
    """``[batch, frames, d_in]`` -> bidirectional GRU -> linear -> ``[batch, frames, 88]`` logits."""

    def __init__(self, d_in: int, hidden: int):
        super().__init__()
        self.rnn = nn.GRU(d_in, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, N_KEYS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.rnn(x)[0])


class Transcriber(nn.Module):
    """Onsets-and-Frames-style piano-roll transcriber (see the module docstring).

    Call :meth:`forward` on a batch of waveforms for training, :meth:`activations` for the
    per-frame probabilities of one recording, and :meth:`transcribe` for a MIDI ``Score``.
    """

    def __init__(self, config: TranscriberConfig | None = None):
        super().__init__()
        self.config = cfg = config or TranscriberConfig()
        self.features = LogMel(cfg)
        self.acoustic = ConvStack(cfg.n_mels, cfg.conv_channels, cfg.d_model, cfg.dropout)
        self.frame_pre = nn.Linear(cfg.d_model, N_KEYS)
        self.onset = BiGRUHead(2 * cfg.d_model, cfg.rnn_hidden)
        self.onset_skip = nn.Linear(2 * cfg.d_model + N_KEYS, N_KEYS)
        self.rise_gain = nn.Parameter(torch.full((N_KEYS,), 8.0))  # a key's own frame rise -> onset logit
        nn.init.constant_(self.onset_skip.bias, -4.0)  # start near the onset prior (~2 % of cells)
        self.offset = nn.Linear(2 * cfg.d_model, N_KEYS)
        self.velocity = nn.Linear(cfg.d_model, N_KEYS)
        self.frame = BiGRUHead(3 * N_KEYS, cfg.rnn_hidden)
        self.harmonic = (
            HarmonicStack(N_KEYS, cfg.harmonic_channels, cfg.d_model) if cfg.harmonic_channels else None
        )
        self.checkpoint_config: dict[str, Any] = {}

    def with_harmonic_stack(self, channels: int) -> Transcriber:
        """A copy of this model with a :class:`~notewave.bridge.transcription.harmonic.HarmonicStack` of
        ``channels`` channels whose output layer is zero, so it transcribes exactly as this one does.

        Raises:
            ConfigError: ``channels`` < 1, or this model already has a harmonic stack.
        """
        if not isinstance(channels, int) or channels < 1:
            raise ConfigError(f"harmonic stack channels must be a whole number >= 1, got {channels!r}")
        if self.harmonic is not None:
            raise ConfigError(
                f"the model already has a harmonic stack ({self.config.harmonic_channels} channels)"
            )
        model = Transcriber(replace(self.config, harmonic_channels=channels))
        missing, unexpected = model.load_state_dict(self.state_dict(), strict=False)
        assert not unexpected and all(k.startswith("harmonic.") for k in missing), (missing, unexpected)
        return model.to(next(self.parameters()).device)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward_features(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of :class:`LogMel` ``[B, T, mels (+ semitone bins)]`` -> logits ``[B, T, 88]`` of each
        head (:data:`HEADS`). With a harmonic stack its output is added to the acoustic features ``x``.

        ``x`` are the acoustic features and ``dx = x[t] - x[t - 1]`` their change (0 at the first
        frame); ``pre`` is the frame head's acoustic estimate and ``rise`` the increase of its
        probability. Onset: ``BiGRU([x, dx]) + linear([x, dx, rise]) + gain * rise`` (``gain`` per key,
        initially 8); offset: ``linear([x, dx])``; frame: ``BiGRU([onset, offset, pre] probabilities,
        the first two gradient-stopped) + pre``.
        """
        n_mels = self.config.n_mels
        x = self.acoustic(mel[..., :n_mels])
        if self.harmonic is not None:
            x = x + self.harmonic(mel[..., n_mels:])
        dx = x - torch.cat([x[:, :1], x[:, :-1]], 1)
        pre = self.frame_pre(x)
        pre_prob = torch.sigmoid(pre)
        rise = torch.relu(pre_prob - torch.cat([pre_prob[:, :1], pre_prob[:, :-1]], 1))
        xdx = torch.cat([x, dx], -1)
        onset = self.onset(xdx) + self.onset_skip(torch.cat([xdx, rise], -1)) + self.rise_gain * rise
        offset = self.offset(xdx)
        cond = torch.cat([torch.sigmoid(onset).detach(), torch.sigmoid(offset).detach(), pre_prob], -1)
        return {
            "onset": onset,
            "offset": offset,
            "frame": self.frame(cond) + pre,
            "velocity": self.velocity(x),
        }

    def forward(self, wav: torch.Tensor, center: bool = True) -> dict[str, torch.Tensor]:
        """Waveforms ``[B, samples]`` float32 at ``config.sample_rate`` -> logits ``[B, frames, 88]``."""
        return self.forward_features(self.features(wav, center))

    @torch.no_grad()
    def activations(
        self, wav: np.ndarray | torch.Tensor, chunk_frames: int = 1024, margin: int = 32
    ) -> dict[str, np.ndarray]:
        """Per-frame probabilities of one mono recording.

        Args:
            wav: float32 ``[samples]`` at ``config.sample_rate`` Hz.
            chunk_frames: the network runs on windows of this many frames (plus ``margin``
                frames of context on each side), bounding memory for long recordings.

        Returns:
            ``{"onset", "offset", "frame", "velocity"}``: float32 ``[frames, 88]`` arrays in [0, 1],
            ``frames = 1 + samples // hop_length``; frame ``t`` is centred at ``t / frames_per_second`` s;
            key ``k`` is MIDI pitch ``21 + k``; velocity is MIDI velocity / 127.
        """
        self.eval()
        device = next(self.parameters()).device
        x = torch.as_tensor(np.asarray(wav, dtype=np.float32), device=device).reshape(1, -1)
        mel = self.features(x)
        total = mel.shape[1]
        parts: dict[str, list[torch.Tensor]] = {h: [] for h in HEADS}
        for start in range(0, total, chunk_frames):
            lo, hi = max(0, start - margin), min(total, start + chunk_frames + margin)
            out = self.forward_features(mel[:, lo:hi])
            for head in HEADS:
                parts[head].append(torch.sigmoid(out[head][0, start - lo : start - lo + chunk_frames]))
        return {h: torch.cat(parts[h]).float().cpu().numpy() for h in HEADS}

    # ---- checkpoints ------------------------------------------------------------------
    def save_pretrained(
        self,
        path: str | os.PathLike[str],
        extra_config: dict[str, Any] | None = None,
        extra_files: Callable[[Path], None] | None = None,
    ) -> Path:
        """Write ``model.safetensors`` and ``config.json`` to the folder ``path`` atomically."""
        config = {**self.config.to_dict(), **(extra_config or {})}
        return write_checkpoint(path, self.state_dict(), config, extra=extra_files)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], map_location: str = "cpu") -> Transcriber:
        """Load a model written by :meth:`save_pretrained` (in eval mode).

        Raises:
            CheckpointError: missing, truncated or mismatching checkpoint folder.
        """
        tensors, raw = read_checkpoint(path)
        try:
            config = TranscriberConfig.from_dict(raw)
        except (TypeError, ValueError, ConfigError) as exc:
            raise CheckpointError(f"checkpoint {path} has an invalid config.json: {exc}") from exc
        model = cls(config)
        load_state(model, tensors, path)
        model.checkpoint_config = raw
        return model.to(map_location).eval()

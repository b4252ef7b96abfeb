"""A Fourier-domain decoder for the codec: ConvNeXt blocks at the STFT frame rate and an inverse STFT.

After Vocos (Siuzdak 2023, "Vocos: Closing the gap between time-domain and Fourier-based neural
vocoders for high-quality audio synthesis", ICLR 2024), which decodes EnCodec's codes this way. Instead
of upsampling latents to the sample rate through transposed convolutions (the SEANet decoder of
:mod:`notewave.audio.codec.layers`), every layer runs at the STFT frame rate and the last one
predicts each frame's spectrum: a log magnitude and a phase per frequency bin, turned into
samples by ``torch.istft`` (Hann window, overlap-add). The spectral detail the mel distance asks
for is then one linear layer away from the features, not built up sample by sample.

``latents [B, dim, T]`` at the codec's frame rate -> repeated ``hop_length / istft_hop`` times ->
Conv1d (kernel 7) + LayerNorm -> ``decoder_layers`` ConvNeXt blocks (depthwise Conv1d kernel 7,
LayerNorm, Linear to 3x width, GELU, Linear back, scaled by a learned per-channel factor, plus the
input; Liu et al. 2022, "A ConvNet for the 2020s") -> LayerNorm -> Linear to ``istft_n_fft + 2``
channels: ``istft_n_fft / 2 + 1`` log magnitudes (clamped at 6 before ``exp``) and as many phases
(radians, unbounded) -> inverse STFT (``istft_n_fft`` window, ``istft_hop`` samples hop, centred)
-> ``wav [B, 1, T * hop_length]``. The head, ``exp``, ``polar`` and the inverse STFT run in float32
with autocast off (a bfloat16 phase is too coarse, and ``torch.polar`` takes one dtype).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

MAX_LOG_MAGNITUDE = 6.0  #: log magnitudes are clamped here before exp (|X| <= ~403)


class TrunkSizes(Protocol):
    """The fields :class:`FrameTrunk` reads (both the decoder's and the detail stream's sizes have them)."""

    hop_length: int
    decoder_dim: int
    istft_hop: int
    istft_n_fft: int


class FourierSizes(TrunkSizes, Protocol):
    """The fields of :class:`~notewave.audio.codec.model.CodecConfig` the decoder is built from."""

    dim: int
    decoder_layers: int
    detail_codebooks: int
    detail_dim: int


class ConvNeXtBlock(nn.Module):
    """``x + scale * Linear(GELU(Linear(LayerNorm(depthwise_conv7(x)))))`` on ``[B, C, T]``."""

    def __init__(self, width: int, expansion: int = 3, kernel_size: int = 7):
        super().__init__()
        self.dw = nn.Conv1d(width, width, kernel_size, padding=kernel_size // 2, groups=width)
        self.norm = nn.LayerNorm(width)
        self.pw1 = nn.Linear(width, expansion * width)
        self.pw2 = nn.Linear(expansion * width, width)
        self.scale = nn.Parameter(torch.full((width,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dw(x).transpose(1, 2))
        y = self.pw2(F.gelu(self.pw1(y))) * self.scale
        return x + y.transpose(1, 2)


class FrameTrunk(nn.Module):
    """What the Fourier decoder and the detail encoder share: the STFT framing (``repeat`` STFT
    frames per codec frame, ``hop`` samples, ``n_fft`` window), LayerNorm -> ``layers`` ConvNeXt
    blocks -> LayerNorm at the STFT frame rate (:meth:`trunk`), and the Hann window.
    Subclasses create ``embed`` (their input layer, whose padding :meth:`reach` counts if any)."""

    extra_frames = 0  #: STFT frames of reach past the blocks' and embed's (detail: its down-sampling)

    def __init__(self, cfg: TrunkSizes, layers: int):
        super().__init__()
        width = cfg.decoder_dim
        self.repeat, self.hop, self.n_fft = cfg.hop_length // cfg.istft_hop, cfg.istft_hop, cfg.istft_n_fft
        self.norm0 = nn.LayerNorm(width)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(width) for _ in range(layers)])
        self.norm = nn.LayerNorm(width)
        self.register_buffer("window", torch.hann_window(cfg.istft_n_fft), persistent=False)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, frames, width]`` (already embedded, channels last) -> ``[B, frames, width]``."""
        x = self.norm0(x).transpose(1, 2)
        return self.norm(self.blocks(x).transpose(1, 2))

    def reach(self) -> int:
        """Upper bound of the one-sided receptive field in samples (for chunked coding): the
        blocks' and the input layer's padding in STFT frames, plus ``extra_frames``, plus half a window."""
        pad = getattr(self.embed, "padding", (0,))[0]
        frames = pad + sum(block.dw.padding[0] for block in self.blocks) + self.extra_frames
        return frames * self.hop + self.n_fft // 2


class FourierDecoder(FrameTrunk):
    """``latents float32 [B, dim, T] -> wav float32 [B, 1, T * hop_length]`` through an inverse STFT.

    With a detail stream (``detail_codebooks > 0``, :mod:`notewave.audio.codec.detail`) the latents
    are ``[B, dim + detail_dim, T]``: the main latents, then the detail latents (zeros when unused).

    See the module docstring. ``hop_length`` must be a multiple of ``istft_hop`` and ``istft_n_fft``
    even (checked by :class:`~notewave.audio.codec.model.CodecConfig`).
    """

    def __init__(self, cfg: FourierSizes):
        super().__init__(cfg, cfg.decoder_layers)
        inputs = cfg.dim + (cfg.detail_dim if cfg.detail_codebooks else 0)  # main (+ detail) latents
        self.embed = nn.Conv1d(inputs, cfg.decoder_dim, 7, padding=3)
        self.head = nn.Linear(cfg.decoder_dim, cfg.istft_n_fft + 2)

    def spectrum(self, latents: torch.Tensor) -> torch.Tensor:
        """Complex64 STFT ``[B, istft_n_fft / 2 + 1, T * hop_length / istft_hop]`` of the decoded audio."""
        x = self.trunk(self.embed(latents.repeat_interleave(self.repeat, dim=-1)).transpose(1, 2))
        with torch.autocast(x.device.type, enabled=False):
            log_magnitude, phase = self.head(x.float()).transpose(1, 2).chunk(2, dim=1)
            return torch.polar(torch.exp(log_magnitude.clamp(max=MAX_LOG_MAGNITUDE)), phase)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        samples = latents.shape[-1] * self.repeat * self.hop
        spec = self.spectrum(latents.float())
        with torch.autocast(spec.device.type, enabled=False):
            wav = torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=samples)
        return wav[:, None]

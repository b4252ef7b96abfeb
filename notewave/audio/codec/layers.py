"""The SEANet encoder and decoder of :mod:`notewave.audio.codec.model`, as trainable modules.

After SEANet (Tagliasacchi et al. 2020) and EnCodec (Défossez et al. 2022), without the LSTM.
Encoder: Conv1d stem; per stride ``s``: residual units (ELU, dilated Conv1d k=3 to half width,
ELU, Conv1d k=1 back, plus the input), ELU, Conv1d (kernel ``2 s``, stride ``s``) doubling the
channels; ELU, Conv1d to ``dim``. The decoder mirrors it with ConvTranspose1d. All convolutions
are weight-normalised (``parametrizations.weight_norm``: the state dict holds ``original0`` /
``original1`` per convolution). Inference runs a folded copy (:mod:`notewave.audio.codec.inference`).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import nn


class SEANetSizes(Protocol):
    """The fields of :class:`~notewave.audio.codec.model.CodecConfig` the layers are built from."""

    channels: int
    strides: tuple[int, ...]
    dim: int
    dilations: tuple[int, ...]
    kernel_size: int


def _weight_norm(conv: nn.Module, fan_in: int, gain: float = 1.0) -> nn.Module:
    """Init N(0, gain^2 / fan_in) and zero bias (PyTorch's default shrinks the signal under large
    bias offsets, so the latents barely vary and training stalls), then weight norm."""
    nn.init.normal_(conv.weight, std=gain / math.sqrt(fan_in))
    nn.init.zeros_(conv.bias)
    return nn.utils.parametrizations.weight_norm(conv)


def _conv(cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1, gain: float = 1.0) -> nn.Module:
    """Conv1d (kernel ``k``) keeping ``N / stride`` frames for N a multiple of ``stride`` (``k = 2 s``)."""
    pad = (stride + 1) // 2 if stride > 1 else (k - 1) * dilation // 2
    conv = nn.Conv1d(cin, cout, k, stride=stride, dilation=dilation, padding=pad)
    return _weight_norm(conv, cin * k, gain)


class ResidualUnit(nn.Module):
    """``x + Conv1d_k1(ELU(Conv1d_k3,dilated(ELU(x))))`` through half the channels."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        half = max(1, channels // 2)  # the residual branch starts small (gain 0.5)
        self.block = nn.Sequential(nn.ELU(), _conv(channels, half, 3, dilation=dilation))
        self.block.extend([nn.ELU(), _conv(half, channels, 1, gain=0.5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class Upsample(nn.Module):
    """ConvTranspose1d (kernel ``2 s``, stride ``s``): ``[B, C, T] -> [B, C', T * s]`` exactly."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = _weight_norm(nn.ConvTranspose1d(cin, cout, 2 * stride, stride=stride), 2 * cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = self.stride // 2  # the transposed conv gives T * s + s samples
        return self.conv(x)[..., left : left + x.shape[-1] * self.stride]


class SEANetEncoder(nn.Sequential):
    """``wav [B, 1, N] -> latents [B, dim, N / hop_length]`` for N a multiple of the hop length."""

    def __init__(self, cfg: SEANetSizes):
        width = cfg.channels
        layers: list[nn.Module] = [_conv(1, width, cfg.kernel_size)]
        for stride in cfg.strides:
            layers += [ResidualUnit(width, d) for d in cfg.dilations]
            layers += [nn.ELU(), _conv(width, 2 * width, 2 * stride, stride=stride)]
            width *= 2
        super().__init__(*layers, nn.ELU(), _conv(width, cfg.dim, cfg.kernel_size))


class SEANetDecoder(nn.Sequential):
    """``latents [B, dim, T] -> wav [B, 1, T * hop_length]``, the mirror of :class:`SEANetEncoder`."""

    def __init__(self, cfg: SEANetSizes):
        width = cfg.channels * 2 ** len(cfg.strides)
        layers: list[nn.Module] = [_conv(cfg.dim, width, cfg.kernel_size)]
        for stride in reversed(cfg.strides):
            layers += [nn.ELU(), Upsample(width, width // 2, stride)]
            width //= 2
            layers += [ResidualUnit(width, d) for d in cfg.dilations]
        super().__init__(*layers, nn.ELU(), _conv(width, 1, cfg.kernel_size))


def receptive_reach(layers: nn.Module, step: int, decoder: bool) -> int:
    """Upper bound of the one-sided receptive field of ``layers`` in samples; ``step``: samples per
    input position (1 for the encoder, hop for the decoder). Convs add ``max(pad, (k-1) d - pad)``."""
    reach = 0
    for module in layers.modules():
        if isinstance(module, nn.ConvTranspose1d):  # an upsampling output sees two input positions
            reach += 2 * step
            step //= module.stride[0]
        elif isinstance(module, nn.Conv1d):
            (k,), (d,), (pad,), (s,) = module.kernel_size, module.dilation, module.padding, module.stride
            reach += max(pad, (k - 1) * d - pad) * step
            step = step // s if decoder else step * s
    return reach

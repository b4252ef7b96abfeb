"""Weight-only int8 linear layers for decoding on the CPU.

A decoding step reads every weight of the model once to produce one position: at batch 1 it is
bound by memory traffic, not arithmetic. The composer's 11.5 M fp32 weights are 45 MB a step;
on the 2-core test machine its matrix products ran at about 9 GB/s, some 5 ms of a 6 ms step.
Stored as int8 with one scale per output channel (symmetric, ``scale = max |w| / 127``), the same
weights are 11 MB, and ATen's ``_weight_int8pack_mm`` (bf16 activations, int8 weights, the kernel
behind weight-only int8 in gpt-fast and torchao) computed the 24 matrix products of that model in
0.9 ms instead of 4.8 ms at batch 1 and 3.0 ms instead of 7.7 ms at batch 8 (one thread, a
training run on the other core). The error is that of per-channel int8 rounding plus bf16
activations: ``tests/core/test_int8.py`` bounds it on a real chorale. Reference: Dettmers et al.
2022, "LLM.int8()" (absmax per-row quantization); weight-only variants as in gpt-fast.

The kernel is a private ATen op: on the CPU of torch 2.13 it crashes the process (SIGSEGV) for an
input width that is not a multiple of 16, so :class:`Int8Linear` refuses such layers
(:func:`int8_fits`) and :func:`int8_available` probes it once on a width it supports.
"""

from __future__ import annotations

import functools

import torch

from notewave.errors import ConfigError


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8 quantization of a linear layer's weight.

    Args:
        weight: float ``[out, in]``.

    Returns:
        ``(q, scales)``: int8 ``[out, in]`` (contiguous) and float32 ``[out]`` with
        ``weight ~= q * scales[:, None]`` (an all-zero row gets scale 1).

    Raises:
        ConfigError: a weight that is not 2-D.
    """
    if weight.dim() != 2:
        raise ConfigError(f"int8 quantization takes a 2-D weight [out, in], not shape {tuple(weight.shape)}")
    w = weight.detach().float()
    scales = w.abs().amax(dim=1) / 127.0
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    q = torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
    return q, scales


WIDTH_MULTIPLE = 16  # input widths the CPU kernel handles


def int8_fits(in_features: int) -> bool:
    """Whether a linear layer of input width ``in_features`` suits the kernel (a multiple of
    :data:`WIDTH_MULTIPLE`)."""
    return in_features % WIDTH_MULTIPLE == 0


@functools.cache
def int8_available() -> bool:
    """Whether this torch build has a CPU ``_weight_int8pack_mm`` that gives the right numbers on
    a ``[3, 64] x [24, 64]`` probe (checked once per process)."""
    op = getattr(torch, "_weight_int8pack_mm", None)
    if op is None:
        return False
    x = torch.arange(3 * 64, dtype=torch.float32).view(3, 64).remainder(7).sub(3)
    w = torch.arange(24 * 64, dtype=torch.float32).view(24, 64).remainder(11).sub(5)
    scales = torch.linspace(0.5, 2.0, 24)
    try:
        out = op(x.to(torch.bfloat16), w.to(torch.int8), scales.to(torch.bfloat16)).float()
    except (RuntimeError, NotImplementedError):
        return False
    return bool(torch.allclose(out, (x @ w.T) * scales, rtol=0.02, atol=0.5))


class Int8Linear:
    """``y = x @ W.T + b`` with ``W`` held as per-row int8 (see :func:`quantize_rows`).

    Args:
        weight: float ``[out, in]`` (copied and quantized here).
        bias: float ``[out]`` or ``None`` (kept in float32).

    Raises:
        ConfigError: this torch build lacks the kernel (check :func:`int8_available` first), or
            the input width is not a multiple of :data:`WIDTH_MULTIPLE`.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        if not int8_available():
            raise ConfigError("this torch build has no CPU _weight_int8pack_mm: decode with fp32 weights")
        self.weight, scales = quantize_rows(weight)  # raises for a weight that is not 2-D
        if not int8_fits(self.weight.shape[1]):
            raise ConfigError(
                f"int8 weights need an input width that is a multiple of {WIDTH_MULTIPLE}, "
                f"not shape {tuple(weight.shape)}"
            )
        self.scales = scales.to(torch.bfloat16)
        self.bias = None if bias is None else bias.detach().float()
        self.out_features, self.in_features = self.weight.shape

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Float32 ``[..., out]`` of float ``x`` ``[..., in]`` (computed with bf16 activations)."""
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16).contiguous()
        y = torch._weight_int8pack_mm(flat, self.weight, self.scales).float()
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features)

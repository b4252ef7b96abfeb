"""Fast inference of the SEANet encoder and decoder (:mod:`notewave.audio.codec.layers`).

:func:`folded` gives an inference copy of an encoder or decoder that computes the same function
(to float rounding, ~1e-6) about 1.3-2x faster on a CPU; :meth:`Codec.encode
<notewave.audio.codec.model.Codec.encode>` and ``decode`` use it whenever gradients are off.
Training (``Codec.forward``) keeps the modules. Where the time went, and what changed:

* **Weight norm folded**: each convolution's weight ``g * v / ||v||`` is computed once and kept
  as a plain tensor, instead of at every call. The copy is cached per module and rebuilt when
  any parameter changes (its data pointer or in-place version counter: an optimizer step,
  ``load_state_dict``, ``.to()``), so the module, its ``state_dict`` keys and the saved
  checkpoints stay exactly as they were.
* **Channels-last convolutions**: activations are held as ``[B, C, 1, T]`` in channels-last
  (time-major) order and run through ``conv2d`` / ``conv_transpose2d``. With the codec's few
  channels (16-256), oneDNN's kernels then work without converting every tensor to and from its
  blocked layout, which took most of a convolution's time in ``[B, C, T]`` order (the
  transposed convolutions and the 16-to-1 output convolution were the slowest).
* **In place** where a tensor has no other reader: the ELU after a convolution, the residual sum.
* **Freed memory kept** (:func:`retain_freed_memory`): glibc returns the heap's top to the
  system once more than twice the largest recent block is free, so every 10 MB activation of a
  5 s window was mapped and zero-filled again page by page: about 40,000 page faults and more than
  half of the time of a 10 s encode on the 2-core test machine. The first call raises the
  trim threshold to :data:`HEAP_TRIM_BYTES` (256 MiB kept at most) and fixes the mmap threshold at
  :data:`MMAP_BYTES`, process-wide; ``NOTEWAVE_MALLOC_TUNING=0`` in the environment turns this off.
"""

from __future__ import annotations

import ctypes
import functools
import os
import weakref
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from notewave.audio.codec.layers import ResidualUnit, Upsample

HEAP_TRIM_BYTES = 256 << 20  #: free heap kept by glibc before it trims (M_TRIM_THRESHOLD)
MMAP_BYTES = 32 << 20  #: blocks from this size up are mmapped (M_MMAP_THRESHOLD; glibc's maximum)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_CL = torch.channels_last
_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, FoldedStack]] = weakref.WeakKeyDictionary()


@functools.cache
def retain_freed_memory() -> bool:
    """Let glibc keep freed heap memory for reuse (see the module docstring); once per process.

    Returns whether the settings were applied (False: not glibc, or ``NOTEWAVE_MALLOC_TUNING=0``).
    """
    if os.environ.get("NOTEWAVE_MALLOC_TUNING", "1").strip() == "0":
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (AttributeError, ValueError, OSError):  # not Linux/glibc
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, HEAP_TRIM_BYTES)) & bool(mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES))


def _fold(layers: Sequence[nn.Module]) -> list[tuple[Any, ...]]:
    """Operations ``(kind, ...)`` with plain weights ``[C_out, C_in, 1, k]`` (channels-last)."""
    ops: list[tuple[Any, ...]] = []
    for m in layers:
        if isinstance(m, nn.ELU):
            ops.append(("elu", m.alpha))
        elif isinstance(m, ResidualUnit):
            ops.append(("residual", _fold(m.block)))
        elif isinstance(m, Upsample):
            weight = m.conv.weight.detach()[:, :, None].contiguous(memory_format=_CL)
            ops.append(("upsample", weight, m.conv.bias.detach(), m.stride))
        elif isinstance(m, nn.Conv1d) and m.groups == 1 and isinstance(m.padding, tuple):
            weight = m.weight.detach()[:, :, None].contiguous(memory_format=_CL)
            bias = None if m.bias is None else m.bias.detach()
            ops.append(("conv", weight, bias, (1, m.stride[0]), (0, m.padding[0]), (1, m.dilation[0])))
        else:
            raise TypeError(f"no folded inference for {type(m).__name__}")
    return ops


def _run(ops: list[tuple[Any, ...]], x: torch.Tensor) -> torch.Tensor:
    """Apply ``ops`` to channels-last ``x [B, C, 1, T]``; ``x`` itself is never written to."""
    for i, op in enumerate(ops):
        kind = op[0]
        if kind == "elu":  # in place unless x is the caller's tensor (a residual unit's input)
            x = F.elu(x, op[1], inplace=i > 0)
        elif kind == "conv":
            x = F.conv2d(x, op[1], op[2], op[3], op[4], op[5]).contiguous(memory_format=_CL)
        elif kind == "residual":
            x = _run(op[1], x).add_(x)
        else:  # upsample: the transposed conv gives T * s + s samples; keep T * s of them
            steps, stride = x.shape[-1], op[3]
            x = F.conv_transpose2d(x, op[1], op[2], stride=(1, stride))
            x = x[..., stride // 2 : stride // 2 + steps * stride].contiguous(memory_format=_CL)
    return x


class FoldedStack:
    """Inference copy of an encoder or decoder (an ``nn.Sequential`` of the SEANet layers).

    ``stack(x)`` maps float ``[B, C, T]`` to what ``layers(x)`` gives (contiguous ``[B, C', T']``),
    without gradients. Raises TypeError for a layer it does not know.
    """

    def __init__(self, layers: nn.Sequential):
        with torch.no_grad():
            self.ops = _fold(layers)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = _run(self.ops, x.unsqueeze(2).contiguous(memory_format=_CL))
        return out.squeeze(2).contiguous()


def _key(module: nn.Module) -> tuple:
    return tuple((id(p), p.data_ptr(), p._version, p.dtype, p.device) for p in module.parameters())


def folded(layers: nn.Sequential) -> FoldedStack:
    """The cached :class:`FoldedStack` of ``layers``, rebuilt when a parameter has changed.

    Also calls :func:`retain_freed_memory` (once per process).
    """
    retain_freed_memory()
    key = _key(layers)
    cached = _CACHE.get(layers)
    if cached is None or cached[0] != key:
        cached = _CACHE[layers] = (key, FoldedStack(layers))
    return cached[1]

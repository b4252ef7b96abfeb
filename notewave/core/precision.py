"""Training precision: use bf16 autocast only where the hardware makes it faster.

bf16 autocast is a large speed-up on GPUs with bf16 tensor cores and on CPUs with AMX or
AVX512_BF16, but on a CPU without native bf16 it is emulated and several times *slower*
than fp32 (15-50x slower measured with AVX2 kernels). :func:`resolve_precision` turns a
requested precision (``"auto"``, ``"fp32"`` or ``"bf16"``) into the one to train with:

* CUDA: native when ``torch.cuda.is_bf16_supported()``.
* CPU: from ``torch.backends.cpu.get_cpu_capability()``: ``AMX`` / ``AVX512_BF16`` count as
  native; ``AVX2``, ``DEFAULT``/``NO AVX``, ``VSX`` and ``ZVECTOR`` do not. Ambiguous strings
  (``AVX512``, which covers CPUs with and without bf16 units, ``SVE*``, unknown ones) are
  settled by a short measured probe, a 256x512 by 512x512 matmul in bf16 autocast against
  fp32 (one thread, best of 7 runs, 10-100 ms once per process): native only when bf16 is at
  least :data:`PROBE_MIN_SPEEDUP` times faster.
* Any other device type: not native.
"""

from __future__ import annotations

import functools
import sys
import time
import warnings
from pathlib import Path

import torch

from notewave.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")
PROBE_MIN_SPEEDUP = 1.25  # bf16 matmul must beat fp32 by this factor to count as native
_NATIVE_MARKERS = ("AMX", "AVX512_BF16", "AVX512BF16")
_NOT_NATIVE = {"DEFAULT", "NO AVX", "AVX", "AVX2", "VSX", "ZVECTOR", "Z VECTOR"}
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _as_device(device: torch.device | str) -> torch.device:
    return device if isinstance(device, torch.device) else torch.device(device)


def cpu_bf16_flags() -> list[str]:
    """The bf16-related CPU flags the Linux kernel reports (``amx_bf16``, ``avx512_bf16``).

    For information only (logs and benches): whether torch's kernels use them is decided by
    :func:`bf16_native`. Returns an empty list elsewhere than Linux or when unreadable.
    """
    if not sys.platform.startswith("linux"):
        return []
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
            break
    return [f for f in _CPU_BF16_FLAGS if f in flags]


def device_capability(device: torch.device | str) -> str:
    """A short description of ``device``'s compute capability, e.g. ``"cpu AVX512"`` or
    ``"cuda NVIDIA H200 sm_90"``, for logs and run summaries."""
    dev = _as_device(device)
    if dev.type == "cuda":
        try:
            major, minor = torch.cuda.get_device_capability(dev)
            return f"cuda {torch.cuda.get_device_name(dev)} sm_{major}{minor}"
        except (RuntimeError, AssertionError):  # no usable CUDA device
            return "cuda (unavailable)"
    if dev.type == "cpu":
        flags = cpu_bf16_flags()
        extra = f" (flags: {' '.join(flags)})" if flags else ""
        return f"cpu {torch.backends.cpu.get_cpu_capability()}{extra}"
    return dev.type


def _best_time(fn: functools.partial, repeats: int, budget: float = 0.25) -> float:
    """Best of ``repeats`` timings of ``fn()`` in seconds after one warm-up; after 3 runs it
    stops once ``budget`` seconds are spent (a slow, emulated kernel needs no more runs)."""
    fn()
    best, spent = float("inf"), 0.0
    for run in range(repeats):
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if run >= 2 and spent > budget:
            break
    return best


def _matmul(a: torch.Tensor, b: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return a @ b


@functools.cache
def cpu_probe_speedup() -> float:
    """Measured speed of a bf16-autocast matmul relative to fp32 on this CPU (>1: bf16 is faster).

    A 256x512 by 512x512 matmul, best of 7 runs each, on one thread: the question is what the
    cores' instruction set does, and a single thread is not thrown off by other processes
    keeping the other cores busy. Measured once per process (cached).
    """
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(256, 512, generator=generator)
    b = torch.randn(512, 512, generator=generator)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            fp32 = _best_time(functools.partial(_matmul, a, b, False), 7)
            bf16 = _best_time(functools.partial(_matmul, a, b, True), 7)
    finally:
        torch.set_num_threads(threads)
    return fp32 / max(bf16, 1e-9)


def _cpu_verdict(capability: str) -> bool | None:
    """``True``/``False`` when ``capability`` settles native bf16, ``None`` when ambiguous."""
    cap = capability.upper()
    if any(marker in cap for marker in _NATIVE_MARKERS):
        return True
    if cap in _NOT_NATIVE:
        return False
    return None


def bf16_native(device: torch.device | str) -> bool:
    """Whether bf16 autocast runs natively (faster than fp32) on ``device``.

    Args:
        device: a ``torch.device`` or a string such as ``"cpu"`` or ``"cuda:0"``.

    Returns:
        CUDA: ``torch.cuda.is_bf16_supported()``. CPU: ``True`` for an AMX / AVX512_BF16
        capability, ``False`` for AVX2 and below, else the measured probe (cached per
        process). Other device types: ``False``.
    """
    dev = _as_device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if dev.type == "cpu":
        verdict = _cpu_verdict(torch.backends.cpu.get_cpu_capability())
        return cpu_probe_speedup() >= PROBE_MIN_SPEEDUP if verdict is None else verdict
    return False


def check_precision(requested: str) -> str:
    """Return ``requested`` when it is one of :data:`PRECISIONS`.

    Raises:
        ConfigError: for any other value.
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    return requested


def resolve_precision(requested: str, device: torch.device | str) -> str:
    """The precision to train with on ``device``: ``"bf16"`` or ``"fp32"``.

    ``"auto"`` gives bf16 only where :func:`bf16_native`; ``"fp32"`` gives fp32; ``"bf16"``
    gives bf16 where native, else fp32 with a one-line ``UserWarning`` naming the capability.

    Raises:
        ConfigError: when ``requested`` is not ``"auto"``, ``"fp32"`` or ``"bf16"``.
    """
    if check_precision(requested) == "fp32":
        return "fp32"
    if bf16_native(device):
        return "bf16"
    if requested == "bf16":
        warnings.warn(
            f"bf16 requested but {device_capability(device)} has no native bf16 "
            "(emulated bf16 is slower than fp32); training in fp32",
            stacklevel=2,
        )
    return "fp32"


def describe_precision(device: torch.device | str, requested: str = "auto") -> str:
    """One line for logs and benches: the capability, whether bf16 is native (with the probe's
    measured speed-up where it was run) and the precision ``requested`` resolves to.

    Raises:
        ConfigError: for an unknown ``requested``.
    """
    check_precision(requested)
    dev = _as_device(device)
    native = bf16_native(dev)
    probe = ""
    if dev.type == "cpu" and _cpu_verdict(torch.backends.cpu.get_cpu_capability()) is None:
        probe = f", probe bf16/fp32 matmul speed {cpu_probe_speedup():.2f}x"
    choice = "fp32" if requested == "fp32" else ("bf16" if native else "fp32")
    return (
        f"{device_capability(dev)}: bf16 {'native' if native else 'not native'}{probe}; "
        f"precision {requested} -> {choice}"
    )

"""Codec code files: ``save_codes`` / ``load_codes``.

Code files (``.npz``, no pickled objects):

- ``codes``: int16 (int64 if N > 32768) ``[K, T]`` with values in ``[0, N)``; ``[1, K, T]`` is read too.
- ``sample_rate`` (int, Hz), ``frame_rate`` (float, Hz) ``= sample_rate / hop_length``,
  ``hop_length`` (int, samples per frame).
- ``num_samples`` (int): length of the encoded audio at the codec rate. The encoder pads the last
  frame with zeros, so ``(T - 1) * hop_length < num_samples <= T * hop_length`` (the slack of up to
  ``hop_length - 1`` samples is the padding that decoding cuts off).
- ``config_hash``, ``weights_hash``, ``codes_hash`` (str, 16 hex digits; ``Codec.fingerprint()``) and
  ``config`` (str, JSON) of the codec. A codec decodes a file whose ``codes_hash`` is its own (any
  decoder on the same encoder and RVQ); a file without one needs the same config and weights hashes.
- ``detail_hash`` (str, codecs with a detail stream): a file with more than the K main codebooks
  decodes only with the same detail stream.

:func:`load_codes` checks all of it and reports any fault as one :class:`~notewave.errors.DataError`
naming the file (a codec that did not make the codes: :class:`~notewave.errors.ConfigError`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from notewave.audio.codec.model import Codec, identity_mismatch
from notewave.core.io import atomic_open
from notewave.errors import ConfigError, DataError

#: scalar keys of a code file and the kind each must have: int, real (int or float) or str
KEY_KINDS = {
    "sample_rate": "int",
    "frame_rate": "real",
    "hop_length": "int",
    "num_samples": "int",
    "config_hash": "str",
    "weights_hash": "str",
    "codes_hash": "str",
    "detail_hash": "str",
    "config": "str",
}


def _frames_fit(num_samples: int, frames: int, hop_length: int) -> bool:
    """Whether ``num_samples`` audio samples encode to ``frames`` frames (module doc)."""
    return (frames - 1) * hop_length < num_samples <= frames * hop_length


def save_codes(
    path: str | os.PathLike[str], codes: torch.Tensor, codec: Codec, num_samples: int | None = None
) -> Path:
    """Write codes int ``[K, T]`` or ``[1, K, T]`` of ``codec`` to a ``.npz`` file atomically (module doc).

    ``num_samples``: length of the encoded audio in samples (default ``T * hop_length``).

    Raises:
        ConfigError: codes of another shape, or ``num_samples`` that ``T`` frames cannot hold.
        DataError: the file cannot be written.
    """
    arr = codes.detach().cpu().numpy()
    arr = arr[0] if arr.ndim == 3 else arr
    if arr.ndim != 2:
        raise ConfigError(f"codes must have shape [K, T] or [1, K, T], got {codes.shape}")
    hop, frames = codec.hop_length, arr.shape[-1]
    num_samples = frames * hop if num_samples is None else int(num_samples)
    if not _frames_fit(num_samples, frames, hop):
        raise ConfigError(f"{num_samples} samples do not encode to {frames} frames of {hop} samples")
    fields = {
        "codes": arr.astype(np.int16 if codec.codebook_size <= 32768 else np.int64),
        "sample_rate": np.int64(codec.sample_rate),
        "frame_rate": np.float64(codec.frame_rate),
        "hop_length": np.int64(hop),
        "num_samples": np.int64(num_samples),
        "config": np.str_(json.dumps(codec.config.to_dict(), sort_keys=True)),
        **{k: np.str_(v) for k, v in codec.fingerprint().items()},
    }
    try:
        with atomic_open(path, "wb") as handle:
            np.savez(handle, **fields)
    except OSError as exc:
        raise DataError(f"cannot write code file {path}: {exc}") from exc
    return Path(path)


def _read(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(codes, other arrays)`` of a ``.npz`` file; DataError naming the file for anything unreadable."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(6)
    except FileNotFoundError as exc:
        raise DataError(f"code file not found: {path}") from exc
    except OSError as exc:  # a folder, no permission
        raise DataError(f"cannot read code file {path}: {exc.strerror or exc}") from exc
    if not head:
        raise DataError(f"code file {path} is empty (0 bytes)")
    if head == b"\x93NUMPY":
        raise DataError(f"{path} holds a single .npy array, not a notewave code file (.npz)")
    if not head.startswith(b"PK"):
        raise DataError(f"{path} is not a notewave code file (.npz, a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # BadZipFile (truncated, bad CRC), EOFError, ValueError (pickled objects)
        raise DataError(
            f"cannot read code file {path} (truncated or corrupt?): {type(exc).__name__}: {exc}"
        ) from exc
    if "codes" not in arrays or "config_hash" not in arrays:
        raise DataError(f"{path} is not a notewave code file (keys {sorted(arrays)})")
    return arrays.pop("codes"), arrays


def _scalar(path: str | os.PathLike[str], key: str, value: np.ndarray) -> Any:
    """The Python value of the 0-d array ``value`` of ``key``, checked against :data:`KEY_KINDS`."""
    kind = KEY_KINDS.get(key)
    if value.ndim != 0:
        if kind is None:
            return None  # an array under a key of some later version: ignored
        raise DataError(f"{path}: {key} must be a single value, got an array of shape {value.shape}")
    is_int = np.issubdtype(value.dtype, np.integer)
    ok = {
        "int": is_int,
        "real": is_int or np.issubdtype(value.dtype, np.floating),
        "str": value.dtype.kind == "U",
        None: value.dtype.kind in "biufU",
    }[kind]
    if not ok:
        raise DataError(f"{path}: {key} must be {kind or 'a plain value'}, got dtype {value.dtype}")
    item, zero_ok = value.item(), key == "num_samples"
    if kind in ("int", "real") and not (math.isfinite(item) and (item > 0 or (zero_ok and item == 0))):
        raise DataError(f"{path}: {key} must be {'non-negative' if zero_ok else 'positive'}, got {item}")
    return item


def _check_codes(path: str | os.PathLike[str], codes: np.ndarray, limits: dict[str, int]) -> np.ndarray:
    """``codes`` as ``[K, T]``: integer dtype, documented shape, values in ``[0, N)`` (``limits``)."""
    if not np.issubdtype(codes.dtype, np.integer):
        raise DataError(f"{path}: codes must be integers, got dtype {codes.dtype}")
    if codes.ndim == 3 and codes.shape[0] == 1:
        codes = codes[0]
    k_max = limits.get("num_codebooks")
    if codes.ndim != 2 or 0 in codes.shape or (k_max is not None and codes.shape[0] > k_max):
        raise DataError(f"{path}: codes must have shape [K <= {k_max or 'K'}, T >= 1], got {codes.shape}")
    low, high, size = int(codes.min()), int(codes.max()), limits.get("codebook_size")
    if low < 0 or (size is not None and high >= size):
        raise DataError(f"{path}: codes must lie in [0, {size or 'N'}), got values {low}..{high}")
    return codes


def load_codes(
    path: str | os.PathLike[str], codec: Codec | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Read a code file: ``(codes int64 [K, T], metadata)``; with ``codec``, check it made them.

    ``metadata`` holds the scalar keys as Python values (module doc); ``num_samples`` defaults to
    ``T * hop_length`` in files without it. The limits (N, K, hop length) come from ``codec`` when
    given, else from the file's own ``config``.

    Raises:
        DataError: missing, unreadable or malformed file (wrong dtype, shape, value range, key type,
            ``num_samples`` inconsistent with ``T``); the message names the file.
        ConfigError: the codes come from a codec with another config or other weights.
    """
    raw, arrays = _read(path)
    meta = {k: v for k, v in ((k, _scalar(path, k, a)) for k, a in arrays.items()) if v is not None}
    limits: dict[str, int] = {}
    if "config" in meta:
        try:
            config = json.loads(meta["config"])
            limits = {k: int(config[k]) for k in ("num_codebooks", "codebook_size")}
            limits["num_codebooks"] += int(config.get("detail_codebooks", 0))
            limits["hop_length"] = math.prod(int(s) for s in config["strides"])
        except (ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{path}: config is not a codec config ({type(exc).__name__}: {exc})") from exc
    if codec is not None:
        mine = codec.fingerprint()
        key = identity_mismatch(meta, mine)
        if not (meta.get("codes_hash") or meta.get("weights_hash")):  # nothing says which weights
            key = key or "weights_hash"
        if key == "config_hash":
            raise ConfigError(
                f"{path} was made by a different codec (config {meta['config_hash']}, this codec "
                f"{mine['config_hash']}; theirs: {meta.get('config')})"
            )
        if key is not None:
            what = "other codes (another encoder, RVQ or size)" if key == "codes_hash" else "other weights"
            raise ConfigError(
                f"{path} was made by a codec with {what}: {key} {meta.get(key)}, this codec {mine[key]}"
            )
        limits = {"num_codebooks": codec.num_codebooks, "codebook_size": codec.codebook_size}
        limits["hop_length"] = codec.hop_length
    codes = _check_codes(path, raw, limits)
    if codec is not None and codes.shape[0] > codec.config.num_codebooks:  # detail codebooks in the file
        if meta.get("detail_hash") != mine.get("detail_hash"):
            raise ConfigError(
                f"{path} holds detail codebooks of another detail stream: detail_hash "
                f"{meta.get('detail_hash')}, this codec {mine.get('detail_hash')}"
            )
    hop = int(meta.get("hop_length", limits.get("hop_length", 0)))
    if "hop_length" in limits and hop != limits["hop_length"]:
        raise DataError(f"{path}: hop_length {hop} does not match the codec's {limits['hop_length']}")
    if {"sample_rate", "frame_rate"} <= meta.keys() and hop:
        if not math.isclose(meta["frame_rate"], meta["sample_rate"] / hop, rel_tol=1e-6):
            raise DataError(f"{path}: frame_rate {meta['frame_rate']} != sample_rate / hop_length")
    frames = codes.shape[-1]
    if hop:
        meta.setdefault("num_samples", frames * hop)
        if not _frames_fit(meta["num_samples"], frames, hop):
            raise DataError(
                f"{path}: num_samples {meta['num_samples']} does not fit {frames} frames of {hop} samples "
                f"(needs {(frames - 1) * hop + 1}..{frames * hop})"
            )
    return torch.from_numpy(codes.astype(np.int64)), meta

"""Codec code files: ``save_codes`` / ``load_codes``.

Code files (``.npz``): ``codes`` int16 (int64 if N > 32768) ``[K, T]``, ``sample_rate`` (Hz),
``frame_rate`` (Hz), ``hop_length``, ``num_samples`` (length of the encoded audio at the
codec rate), ``config_hash``, ``weights_hash`` and ``config`` (JSON) of the codec.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from notewave.audio.codec.model import Codec
from notewave.core.io import atomic_open
from notewave.errors import ConfigError, DataError


def save_codes(
    path: str | os.PathLike[str], codes: torch.Tensor, codec: Codec, num_samples: int | None = None
) -> Path:
    """Write codes ``[K, T]`` or ``[1, K, T]`` of ``codec`` to a ``.npz`` file atomically (module doc)."""
    arr = codes.detach().cpu().numpy()
    arr = arr[0] if arr.ndim == 3 else arr
    if arr.ndim != 2:
        raise ConfigError(f"codes must have shape [K, T] or [1, K, T], got {codes.shape}")
    fields = {
        "codes": arr.astype(np.int16 if codec.codebook_size <= 32768 else np.int64),
        "sample_rate": np.int64(codec.sample_rate),
        "frame_rate": np.float64(codec.frame_rate),
        "hop_length": np.int64(codec.hop_length),
        "num_samples": np.int64(num_samples if num_samples is not None else arr.shape[-1] * codec.hop_length),
        "config": np.str_(json.dumps(codec.config.to_dict(), sort_keys=True)),
        **{k: np.str_(v) for k, v in codec.fingerprint().items()},
    }
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **fields)
    return Path(path)


def load_codes(
    path: str | os.PathLike[str], codec: Codec | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Read a code file: ``(codes int64 [K, T], metadata)``; with ``codec``, check it made them.

    Raises:
        DataError: missing or malformed file.
        ConfigError: the codes come from a codec with another config or other weights.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = {k: data[k].item() for k in data.files if k != "codes"}
            codes = torch.from_numpy(data["codes"].astype(np.int64))
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read code file {path}: {exc}") from exc
    if codes.dim() != 2 or "config_hash" not in meta:
        raise DataError(
            f"{path} is not a notewave code file (codes {tuple(codes.shape)}, keys {sorted(meta)})"
        )
    if codec is not None:
        mine = codec.fingerprint()
        if meta["config_hash"] != mine["config_hash"]:
            raise ConfigError(
                f"{path} was made by a different codec (config {meta['config_hash']}, this codec "
                f"{mine['config_hash']}; theirs: {meta.get('config')})"
            )
        if meta.get("weights_hash") != mine["weights_hash"]:
            raise ConfigError(
                f"{path} was made by a codec with other weights (weights hash {meta.get('weights_hash')}, "
                f"this codec {mine['weights_hash']})"
            )
    return codes, meta

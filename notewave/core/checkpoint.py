"""Checkpoints: ``safetensors`` weights plus a JSON config in one folder, written atomically.

A checkpoint folder holds ``model.safetensors`` and ``config.json`` (and whatever else the
caller adds, such as ``tokenizer.json``). :func:`write_checkpoint` fills a temporary
sibling folder and renames it into place, so a crash never leaves a half-written
checkpoint. No pickle is involved anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from notewave.core.io import default_mode
from notewave.errors import CheckpointError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def write_checkpoint(
    path: str | os.PathLike[str],
    tensors: dict[str, torch.Tensor],
    config: dict[str, Any],
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``tensors`` and ``config`` to the folder ``path``, replacing it atomically.

    Args:
        path: checkpoint folder; created, or replaced when it exists.
        tensors: name -> tensor (any dtype); stored contiguous on the CPU.
        config: JSON-serialisable dict, stored as ``config.json``.
        extra: called with the temporary folder to add more files (e.g. a tokenizer).

    Returns:
        The checkpoint folder.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        save_file(cpu, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
        if extra is not None:
            extra(tmp)
        os.chmod(tmp, default_mode(0o777))  # mkdtemp makes 0700 folders
        for file in tmp.iterdir():  # and safetensors writes 0600 files
            if file.is_file():
                os.chmod(file, default_mode(0o666))
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the weights and config written by :func:`write_checkpoint`.

    Returns:
        ``(tensors, config)``, tensors on the CPU.

    Raises:
        CheckpointError: when the folder, the weights or the config are missing, truncated or unreadable.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    weights, config_file = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    for needed in (weights, config_file):
        if not needed.is_file():
            raise CheckpointError(f"checkpoint {folder} is incomplete: {needed.name} is missing")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint config {config_file} is unreadable: {exc}") from exc
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint weights {weights} are truncated or corrupt: {exc}") from exc
    return tensors, config


def load_state(
    module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str | os.PathLike[str]
) -> None:
    """Load ``tensors`` into ``module`` strictly.

    Raises:
        CheckpointError: on a mismatch, naming ``source``.
    """
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"checkpoint {source} does not match the model: {first}") from exc

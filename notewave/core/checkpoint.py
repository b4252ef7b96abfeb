"""Checkpoints: ``safetensors`` weights plus a JSON config in one folder, written atomically.

A checkpoint folder holds ``model.safetensors`` and ``config.json`` (and whatever else the
caller adds, such as ``tokenizer.json``). No pickle is involved anywhere.

Crash safety. :func:`write_checkpoint` replaces a folder ``NAME`` through hidden siblings:

1. fill ``.NAME.tmp-KEY`` and flush every file to disk (fsync);
2. rename it to ``.NAME.new-KEY``: the rename marks the copy complete;
3. rename the current ``NAME`` (if any) to ``.NAME.old-KEY``;
4. rename ``.NAME.new-KEY`` to ``NAME``, then delete ``.NAME.old-KEY``.

A process killed at any instant leaves at least one complete checkpoint under ``NAME``,
``.NAME.new-*`` or ``.NAME.old-*``. :func:`recover_checkpoint` (run by readers when ``NAME``
is missing, and by writers and ``--resume`` always) promotes the newest complete copy back
to ``NAME`` when it is missing and deletes the hidden leftovers. One writer per folder.
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
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from notewave.core.io import default_mode
from notewave.errors import CheckpointError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
_TMP, _NEW, _OLD = "tmp-", "new-", "old-"


def _fsync(path: Path) -> None:
    """Flush a file, or (on POSIX) a folder's entries, to disk."""
    folder = path.is_dir()
    if folder and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        if not folder:  # some file systems cannot fsync folders; files must be flushed
            raise
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def checkpoint_complete(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder whose ``config.json`` parses and whose ``model.safetensors``
    is whole (its header and the length the header promises; the tensors are not read)."""
    folder = Path(path)
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as weights:
            weights.keys()
    except (OSError, ValueError, RuntimeError, SafetensorError):
        return False
    return isinstance(config, dict)


def _candidates(parent: Path, prefix: str) -> list[Path]:
    """Complete-by-name hidden copies, best first: ``.new-*`` (newer) before ``.old-*``,
    then the most recently written first."""

    def written(p: Path) -> float:
        try:
            return (p / CONFIG_FILE).stat().st_mtime
        except OSError:
            return 0.0

    found = [
        p for p in parent.iterdir() if p.name.startswith(prefix + _NEW) or p.name.startswith(prefix + _OLD)
    ]
    return sorted(found, key=lambda p: (p.name.startswith(prefix + _NEW), written(p)), reverse=True)


def recover_checkpoint(path: str | os.PathLike[str], clean: bool = True) -> Path | None:
    """Finish what an interrupted :func:`write_checkpoint` of the folder ``path`` left behind.

    When ``path`` is missing, the newest complete hidden copy (``.NAME.new-*``, else
    ``.NAME.old-*``; checked with :func:`checkpoint_complete`) is renamed to ``path``. With
    ``clean``, every other hidden ``.NAME.*`` sibling (half-written ``.tmp-*`` folders,
    superseded copies) is then deleted; only the folder's single writer should clean.

    Returns:
        ``path`` when it now holds a checkpoint folder, else ``None``.
    """
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        return None
    prefix = f".{target.name}."
    if not target.exists():
        for candidate in _candidates(parent, prefix):
            if not checkpoint_complete(candidate):
                continue
            try:
                os.rename(candidate, target)
            except OSError:
                if target.exists():  # another process promoted a copy first
                    break
                continue
            _fsync(parent)
            break
    if clean:
        for leftover in parent.iterdir():
            if leftover.name.startswith(prefix) and leftover != target:
                _remove(leftover)
    return target if target.is_dir() else None


def write_checkpoint(
    path: str | os.PathLike[str],
    tensors: dict[str, torch.Tensor],
    config: dict[str, Any],
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``tensors`` and ``config`` to the folder ``path``, replacing it atomically.

    Leftovers of an earlier interrupted write are recovered first (:func:`recover_checkpoint`);
    the write itself follows the crash-safe sequence in the module docstring.

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
    recover_checkpoint(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_TMP}", dir=target.parent))
    key = tmp.name[len(f".{target.name}.{_TMP}") :]
    ready = target.with_name(f".{target.name}.{_NEW}{key}")
    old = target.with_name(f".{target.name}.{_OLD}{key}")
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
                _fsync(file)
        _fsync(tmp)
        os.rename(tmp, ready)
        _fsync(target.parent)
        if target.exists():
            os.rename(target, old)
        try:
            os.rename(ready, target)
        except FileNotFoundError:
            if not target.is_dir():  # a reader may have promoted the new copy already
                raise
        _fsync(target.parent)
    except Exception:
        if old.exists() and not target.exists():
            os.rename(old, target)  # roll back to the previous checkpoint
        for leftover in (tmp, ready):
            _remove(leftover)
        raise
    _remove(old)
    return target


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the weights and config written by :func:`write_checkpoint`.

    When the folder is missing but an interrupted write left a complete hidden copy, that copy
    is first renamed into place (:func:`recover_checkpoint` without cleaning).

    Returns:
        ``(tensors, config)``, tensors on the CPU.

    Raises:
        CheckpointError: when the folder, the weights or the config are missing, truncated or unreadable.
    """
    folder = Path(path)
    if not folder.is_dir() and recover_checkpoint(folder, clean=False) is None:
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    weights, config_file = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    for needed in (weights, config_file):
        if not needed.is_file():
            raise CheckpointError(f"checkpoint {folder} is incomplete: {needed.name} is missing")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint config {config_file} is unreadable: {exc}") from exc
    if not isinstance(config, dict):
        raise CheckpointError(
            f"checkpoint config {config_file} is not a JSON object (got {type(config).__name__})"
        )
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

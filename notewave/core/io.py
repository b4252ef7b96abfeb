"""Atomic file output: write to a temporary file in the same folder, then rename.

A crash or an exception while writing never leaves a half-written file at the target
path: either the old file (or nothing) or the complete new file is there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def default_mode(base: int) -> int:
    """``base`` (0o666 for files, 0o777 for folders) less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Use this for writers that take a file name (``symusic.Score.dump_midi``,
    ``soundfile.write``, ``safetensors.torch.save_file``). The parent folder is
    created when missing. On any exception the temporary file is removed and the
    target is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, default_mode(0o666))  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` on success.

    ``mode`` is ``"w"`` (text, UTF-8 by default) or ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding or "utf-8"}
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def find_files(folder: str | os.PathLike[str], suffixes: set[str], kind: str = "data") -> list[Path]:
    """Sorted files below ``folder`` whose suffix (lower-cased, e.g. ``".mid"``) is in ``suffixes``.

    Hidden files and folders (names starting with ``.``, such as the temporary files of an
    interrupted atomic write) are skipped.

    Raises:
        DataError: when the folder does not exist or holds no such file (``kind`` names them).
    """
    from notewave.errors import DataError

    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{kind} folder not found: {root}")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in suffixes
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.is_file()
    )
    if not files:
        raise DataError(f"no {kind} files ({', '.join(sorted(suffixes))}) under {root}")
    return files

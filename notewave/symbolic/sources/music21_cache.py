"""The file cache of music21 conversions: one JSON file per piece, named by a hash of its inputs.

:func:`write_cache` keeps a result of
:func:`~notewave.symbolic.sources.music21_convert.convert_piece` (failures too) in the file
named by :func:`cache_file`, ``CACHE/<piece>-<hash>.json``; the hash covers the corpus file's
path, size and modification time, the tune number, the collection's conversion settings
(programs, chords, voices, tempo), music21's version and
:data:`~notewave.symbolic.sources.music21_convert.MUSIC21_SOURCE_VERSION`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from notewave.core.io import atomic_open
from notewave.symbolic.sources.music21_collections import MUSIC21_COLLECTIONS, Music21Piece
from notewave.symbolic.sources.music21_convert import CONVERSION_FIELDS, MUSIC21_SOURCE_VERSION


def cache_file(cache_dir: Path, piece: Music21Piece, root: Path) -> Path:
    """The cache file of ``piece`` (see the module docstring for what its hash covers).

    Raises:
        OSError: the corpus file cannot be stat'ed.
    """
    stat = (root / piece.path).stat()
    info = MUSIC21_COLLECTIONS[piece.collection]
    facts = [
        MUSIC21_SOURCE_VERSION,
        metadata.version("music21"),
        piece.path,
        piece.number,
        piece.voices,
        stat.st_size,
        stat.st_mtime_ns,
        {name: getattr(info, name) for name in CONVERSION_FIELDS},
    ]
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True, default=sorted).encode()).hexdigest()[:16]
    return cache_dir / f"{piece.name[:-4]}-{digest}.json"


def read_cache(path: Path) -> dict[str, Any] | None:
    """A cached result, or None when the file is missing or unreadable."""
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry.get("ok"):
            entry["midi"] = base64.b64decode(entry["midi"])
        return entry
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cache(path: Path, result: dict[str, Any]) -> None:
    """Store a result of :func:`convert_piece` atomically (a timed-out one is not stored)."""
    if result.get("timeout"):
        return
    entry = dict(result)
    if entry.get("ok"):
        entry["midi"] = base64.b64encode(entry["midi"]).decode("ascii")
    with atomic_open(path) as handle:
        json.dump(entry, handle)

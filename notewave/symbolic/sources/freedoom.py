"""The music of Freedoom (Debian package ``freedoom``) as General MIDI files.

Freedoom is a free game data set for Doom engines; its two WAD files
(``freedoom1.wad``, ``freedoom2.wad``) hold about 66 original pieces (rock, metal,
ambient) as standard MIDI lumps, multi-track, General MIDI, with drums on channel 10.

A WAD file is a 12-byte header (4-byte magic ``IWAD`` or ``PWAD``, little-endian int32
lump count, int32 directory offset) and a directory of 16-byte entries (int32 offset,
int32 size, 8-byte name padded with NUL bytes). :func:`read_wad` reads it;
:func:`wad_music_lumps` keeps the lumps whose bytes start with ``MThd`` (standard MIDI)
or ``MUS\\x1a`` (the older DMX MUS format). MUS lumps are *not converted*: they are
skipped and counted in the data card (Freedoom 0.12 has none).

:func:`export_freedoom` writes each distinct MIDI lump, byte for byte (tracks,
programs, drums and tempo untouched), to ``OUT/<split>/freedoom<N>_<LUMP>.mid``; a lump
whose bytes equal an earlier one (by SHA-256; WADs are read in the order of
:data:`FREEDOOM_WADS`, lumps in directory order) is left out and listed in the card.
The split key is the piece name (``freedoom1_D_E1M1``). Every piece gets the style
``game-rock``: the WADs hold no genre information, so no finer label is claimed.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from notewave.errors import DataError
from notewave.symbolic.sources.card import (
    load_midi_bytes,
    package_info,
    piece_stats,
    remove_stale,
    safe_name,
    split_for,
    write_card,
    write_piece,
)

#: WAD files of the Debian package, read in this order.
FREEDOOM_WADS: tuple[Path, ...] = (
    Path("/usr/share/games/doom/freedoom1.wad"),
    Path("/usr/share/games/doom/freedoom2.wad"),
)
FREEDOOM_PACKAGE = "freedoom"
FREEDOOM_STYLE = "game-rock"
MIDI_MAGIC = b"MThd"
MUS_MAGIC = b"MUS\x1a"
_HEADER = struct.Struct("<4sii")
_ENTRY = struct.Struct("<ii8s")


@dataclass(frozen=True)
class WadLump:
    """One directory entry of a WAD file and its bytes."""

    name: str
    offset: int
    data: bytes


def read_wad(path: str | os.PathLike[str]) -> list[WadLump]:
    """Read every lump of a WAD file, in directory order.

    Raises:
        DataError: the file is missing or unreadable, has no ``IWAD``/``PWAD`` header,
            or its directory or a lump lies outside the file.
    """
    wad = Path(path)
    try:
        blob = wad.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read WAD file {wad}: {exc.strerror or exc}") from exc
    if len(blob) < _HEADER.size:
        raise DataError(f"{wad}: too short for a WAD header ({len(blob)} bytes)")
    magic, count, directory = _HEADER.unpack_from(blob, 0)
    if magic not in (b"IWAD", b"PWAD"):
        raise DataError(f"{wad}: not a WAD file (magic {magic!r}, expected b'IWAD' or b'PWAD')")
    if count < 0 or directory < _HEADER.size or directory + count * _ENTRY.size > len(blob):
        raise DataError(f"{wad}: directory ({count} entries at byte {directory}) lies outside the file")
    lumps = []
    for index in range(count):
        offset, size, raw_name = _ENTRY.unpack_from(blob, directory + index * _ENTRY.size)
        name = raw_name.split(b"\0", 1)[0].decode("ascii", errors="replace")
        if size < 0 or offset < 0 or (size > 0 and offset + size > len(blob)):
            raise DataError(f"{wad}: lump {index} ({name!r}) lies outside the file")
        lumps.append(WadLump(name, offset, blob[offset : offset + size]))
    return lumps


def wad_music_lumps(path: str | os.PathLike[str]) -> list[WadLump]:
    """The lumps of a WAD whose bytes are standard MIDI (``MThd``) or DMX MUS (``MUS\\x1a``).

    Raises:
        DataError: as :func:`read_wad`.
    """
    return [lump for lump in read_wad(path) if lump.data[:4] in (MIDI_MAGIC, MUS_MAGIC)]


def freedoom_wads() -> list[Path]:
    """The WAD files of :data:`FREEDOOM_WADS`.

    Raises:
        DataError: one is missing (the package is not installed).
    """
    missing = [path for path in FREEDOOM_WADS if not path.is_file()]
    if missing:
        raise DataError(
            f"freedoom is not installed ({missing[0]} not found): apt-get install {FREEDOOM_PACKAGE}"
        )
    return list(FREEDOOM_WADS)


def export_freedoom(
    out_dir: str | os.PathLike[str] = Path("data/freedoom"), *, progress: bool = True
) -> dict[str, Any]:
    """Write Freedoom's MIDI music to ``out_dir/<split>/*.mid`` with ``DATA_CARD.md`` and ``data.json``.

    See the module docstring for naming, de-duplication, splits and style. Files are
    written atomically and byte-identical to the lumps, so a rerun gives the same folder;
    ``freedoom*.mid`` files in the split folders that this run did not write (e.g. from
    another package version) are removed.

    Returns:
        The data card as written to ``data.json`` (``summary`` holds pieces per split,
        bars, seconds, hours, track counts, the GM program histogram and styles).

    Raises:
        DataError: the package is not installed, a WAD is malformed, or a MIDI lump
            cannot be parsed or has no notes.
    """
    out = Path(out_dir)
    wads = freedoom_wads()
    lumps = [(wad, lump) for wad in wads for lump in wad_music_lumps(wad)]
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    mus_skipped: list[str] = []
    pieces: list[dict[str, Any]] = []
    written: list[Path] = []
    for wad, lump in tqdm(lumps, unit="piece", desc="freedoom", disable=not progress):
        origin = f"{wad.name}:{lump.name}"
        if lump.data[:4] == MUS_MAGIC:
            mus_skipped.append(origin)
            continue
        digest = hashlib.sha256(lump.data).hexdigest()
        if digest in seen:
            duplicates.append(f"{origin} = {seen[digest]}")
            continue
        seen[digest] = origin
        score = load_midi_bytes(lump.data, origin)
        key = safe_name(f"{wad.stem}_{lump.name}")
        split = split_for(key)
        path = write_piece(out, split, f"{key}.mid", lump.data)
        written.append(path)
        pieces.append(
            {
                "file": f"{split}/{path.name}",
                "split": split,
                "split_key": key,
                "style": FREEDOOM_STYLE,
                "origin": origin,
                "sha256": digest,
                "ticks_per_quarter": int(score.ticks_per_quarter),
                **piece_stats(score),
            }
        )
    if not pieces:
        raise DataError(f"no MIDI music lumps found in {', '.join(str(wad) for wad in wads)}")
    remove_stale(out, "freedoom", written)
    source = {**package_info(FREEDOOM_PACKAGE), "files": [str(wad) for wad in wads]}
    notes = [
        f"{len(lumps)} music lumps found; {len(pieces)} distinct MIDI pieces written byte for byte "
        "(tracks, programs, drums, tempo untouched).",
        f"Duplicate lumps left out (same SHA-256): {', '.join(duplicates) or 'none'}.",
        f"MUS-format lumps skipped (not converted): {len(mus_skipped)}"
        + (f" ({', '.join(mus_skipped)})" if mus_skipped else "")
        + ".",
        f"Style: every piece is labelled '{FREEDOOM_STYLE}' (video-game music, mostly rock/metal "
        "with some ambient pieces); the WADs carry no per-piece genre, so no finer label is claimed.",
        "Composers: see /usr/share/doc/freedoom/CREDITS.gz.",
        "Bars assume 4/4 where a file has no time signature; seconds follow the files' tempo maps.",
    ]
    return write_card(out, "Freedoom music (General MIDI)", source, pieces, notes)

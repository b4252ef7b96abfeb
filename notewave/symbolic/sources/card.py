"""Shared helpers of the packaged MIDI sources: split by piece, piece statistics, data card.

Used by :mod:`notewave.symbolic.sources.freedoom` and :mod:`notewave.symbolic.sources.mma`.
The output layout is the one :func:`notewave.symbolic.train.split_folder` reads:
``OUT/train``, ``OUT/valid`` and ``OUT/test`` hold the ``.mid`` files, and ``OUT`` also
holds ``data.json`` (machine-readable) and ``DATA_CARD.md`` (the same facts for people).

Splits are by piece and deterministic: :func:`split_for` hashes a split key (a piece
name, or a family name when several pieces are variants of one another) with SHA-256,
so a piece lands in the same split on every run, on every machine, whatever else is in
the folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import symusic

from notewave.core.debian import package_version
from notewave.core.io import atomic_open
from notewave.errors import DataError

SPLITS = ("train", "valid", "test")
#: Percent of split keys (by hash) in valid and in test; the rest is train.
VALID_PERCENT = 10
TEST_PERCENT = 10
SPLIT_RULE = (
    f"int(sha256(split_key).hexdigest(), 16) % 100: below {100 - VALID_PERCENT - TEST_PERCENT} train, "
    f"below {100 - TEST_PERCENT} valid, else test"
)

#: General MIDI program families (zero-based programs 8*i .. 8*i+7).
GM_FAMILIES = (
    "piano",
    "chromatic percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth lead",
    "synth pad",
    "synth effects",
    "ethnic",
    "percussive",
    "sound effects",
)


def split_for(key: str) -> str:
    """Return ``"train"``, ``"valid"`` or ``"test"`` for a split key (about 80/10/10)."""
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % 100
    if bucket < 100 - VALID_PERCENT - TEST_PERCENT:
        return "train"
    return "valid" if bucket < 100 - TEST_PERCENT else "test"


def safe_name(text: str) -> str:
    """``text`` with every run of characters other than ``A-Za-z0-9._-`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "piece"


def package_info(package: str) -> dict[str, str]:
    """Debian package facts: ``{"package", "version", "licence"}``.

    The version comes from ``dpkg-query -W`` (``"unknown"`` when dpkg is missing); the
    licence is the ``License:`` of the ``Files: *`` stanza of
    ``/usr/share/doc/<package>/copyright``. A licence text that is the 3-clause BSD
    licence under another short name (Freedoom calls it ``freedoom-license``) is
    reported as ``BSD-3-Clause (<short name>)``.
    """
    return {"package": package, "version": package_version(package), "licence": copyright_licence(package)}


def copyright_licence(package: str, doc_root: Path = Path("/usr/share/doc")) -> str:
    """The licence of ``package``'s main files per its Debian copyright file, or ``"unknown"``."""
    path = doc_root / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    licence = "unknown"
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^(Files|License):[ \t]*(.*)$", stanza, flags=re.MULTILINE))
        if fields.get("Files", "").strip() == "*" and fields.get("License"):
            licence = fields["License"].strip()
            break
    bsd3 = "Redistributions in binary form" in text and "Neither the name" in text
    if bsd3 and "BSD" not in licence.upper() and "GPL" not in licence.upper():
        return f"BSD-3-Clause ({licence})"
    return licence


def count_bars(score: symusic.Score) -> int:
    """Bars spanned by ``score`` (from tick 0 to its last note-off), rounded up.

    Bar lengths follow the score's time signatures; before the first one, and in a
    score without any, 4/4 is assumed (the MIDI default). A release less than a 32nd
    note past a bar line does not open a new bar.
    """
    tpq = score.ticks_per_quarter
    end = score.end() - tpq // 8
    if end <= 0:
        return 0 if score.end() <= 0 else 1
    changes = sorted((int(ts.time), ts.numerator, ts.denominator) for ts in score.time_signatures)
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, 4, 4))
    bars = 0.0
    for index, (start, numerator, denominator) in enumerate(changes):
        if start >= end:
            break
        stop = min(end, changes[index + 1][0]) if index + 1 < len(changes) else end
        bar_ticks = tpq * 4 * numerator / max(denominator, 1)
        bars += (stop - start) / bar_ticks if bar_ticks > 0 else 0.0
    return math.ceil(bars - 1e-9)


def piece_stats(score: symusic.Score) -> dict[str, Any]:
    """Statistics of one piece: notes, bars, seconds, track counts and GM programs.

    Only tracks holding notes are counted. ``programs`` lists the zero-based General
    MIDI program of each pitched (non-drum) track with notes, in track order.
    """
    sounding = [track for track in score.tracks if len(track.notes) > 0]
    return {
        "notes": int(sum(len(track.notes) for track in sounding)),
        "bars": count_bars(score),
        "seconds": round(float(score.to("second").end()), 3),
        "pitched_tracks": sum(1 for track in sounding if not track.is_drum),
        "drum_tracks": sum(1 for track in sounding if track.is_drum),
        "programs": [int(track.program) for track in sounding if not track.is_drum],
    }


def load_midi_bytes(data: bytes, origin: str) -> symusic.Score:
    """Parse MIDI bytes with symusic.

    Raises:
        DataError: symusic cannot parse the bytes, or the piece has no notes (the
            message names ``origin``).
    """
    try:
        score = symusic.Score.from_midi(data)
    except Exception as exc:  # symusic raises RuntimeError/ValueError on bad files
        raise DataError(f"{origin}: not a readable MIDI file ({exc})") from exc
    if score.note_num() == 0:
        raise DataError(f"{origin}: MIDI file has no notes")
    return score


def write_piece(out: Path, split: str, name: str, data: bytes) -> Path:
    """Write MIDI bytes unchanged, atomically, to ``out/<split>/<name>``; return the path."""
    target = out / split / name
    with atomic_open(target, "wb") as handle:
        handle.write(data)
    return target


def remove_stale(out: Path, prefix: str, keep: Iterable[Path]) -> list[Path]:
    """Delete ``out/<split>/<prefix>*.mid`` files not in ``keep`` (left by an earlier run).

    Only files whose name starts with ``prefix`` are touched. Returns the removed paths.
    """
    kept = {Path(path).resolve() for path in keep}
    removed = []
    for split in SPLITS:
        for path in sorted((out / split).glob(f"{prefix}*.mid")):
            if path.resolve() not in kept:
                path.unlink()
                removed.append(path)
    return removed


def summarise(pieces: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals over piece records (each with the keys of :func:`piece_stats`, ``split`` and ``style``)."""
    programs = Counter(program for piece in pieces for program in piece["programs"])
    seconds = sum(piece["seconds"] for piece in pieces)
    return {
        "pieces": len(pieces),
        "splits": {split: sum(1 for piece in pieces if piece["split"] == split) for split in SPLITS},
        "bars": sum(piece["bars"] for piece in pieces),
        "seconds": round(seconds, 1),
        "hours": round(seconds / 3600, 3),
        "notes": sum(piece["notes"] for piece in pieces),
        "pitched_tracks": sum(piece["pitched_tracks"] for piece in pieces),
        "drum_tracks": sum(piece["drum_tracks"] for piece in pieces),
        "pieces_with_drums": sum(1 for piece in pieces if piece["drum_tracks"] > 0),
        "programs": {str(program): count for program, count in sorted(programs.items())},
        "styles": dict(sorted(Counter(piece["style"] for piece in pieces).items())),
    }


def write_card(
    out: Path,
    title: str,
    source: dict[str, Any],
    pieces: Sequence[dict[str, Any]],
    notes: Sequence[str],
    *,
    extra: dict[str, Any] | None = None,
    sections: Sequence[tuple[str, Sequence[str]]] = (),
) -> dict[str, Any]:
    """Write ``out/data.json`` and ``out/DATA_CARD.md`` atomically; return the JSON object.

    ``source`` describes the origin: a Debian package (``package``, ``version``,
    ``licence``, ``files``) or another origin (``name``, ``version``, ``licence``, ...);
    ``pieces`` are the per-piece records (``file`` relative to ``out``, ``split``,
    ``style``, ...); ``notes`` are free-text lines for the card (method, caveats, skipped
    items). ``extra`` adds top-level keys to ``data.json`` (before ``pieces``);
    ``sections`` adds ``(heading, markdown lines)`` sections to the card after the notes.
    """
    summary = summarise(pieces)
    card = {
        "title": title,
        "source": source,
        "split_rule": SPLIT_RULE,
        "summary": summary,
        "notes": list(notes),
        **(extra or {}),
        "pieces": sorted(pieces, key=lambda piece: piece["file"]),
    }
    with atomic_open(out / "data.json") as handle:
        json.dump(card, handle, indent=1, sort_keys=False)
        handle.write("\n")
    with atomic_open(out / "DATA_CARD.md") as handle:
        handle.write(_card_markdown(card, sections))
    return card


def _card_markdown(card: dict[str, Any], sections: Sequence[tuple[str, Sequence[str]]] = ()) -> str:
    summary, source = card["summary"], card["source"]
    families = Counter()
    for program, count in summary["programs"].items():
        families[GM_FAMILIES[int(program) // 8]] += count
    lines = [
        f"# {card['title']}",
        "",
        f"- Source: Debian package `{source['package']}` {source['version']}"
        if "package" in source
        else f"- Source: {source['name']} {source['version']}",
        f"- Licence: {source['licence']}",
        f"- Pieces: {summary['pieces']} ("
        + ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
        + ")",
        f"- Bars: {summary['bars']}; duration: {summary['hours']} h ({summary['seconds']} s)",
        f"- Notes: {summary['notes']}",
        f"- Tracks with notes: {summary['pitched_tracks']} pitched, {summary['drum_tracks']} drum "
        f"({summary['pieces_with_drums']} pieces have drums)",
        "- GM program families (pitched tracks): "
        + ", ".join(f"{name} {count}" for name, count in families.most_common()),
        "- Styles: " + ", ".join(f"{name} {count}" for name, count in summary["styles"].items()),
        f"- Split rule (by piece): {card['split_rule']}",
        "",
        "## Notes",
        "",
        *[f"- {note}" for note in card["notes"]],
        "",
        *[line for heading, body in sections for line in (f"## {heading}", "", *body, "")],
        "## Pieces",
        "",
        "| file | style | bars | seconds | pitched | drums |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        *[
            f"| {p['file']} | {p['style']} | {p['bars']} | {p['seconds']:.1f} | {p['pitched_tracks']} "
            f"| {p['drum_tracks']} |"
            for p in card["pieces"]
        ],
        "",
        "Per-piece GM programs, origins and SHA-256 hashes are in `data.json`.",
        "",
    ]
    return "\n".join(lines)

"""music21's bundled corpus as split, de-duplicated, style-labelled MIDI files (``notewave data music21``).

music21 ships a corpus of MusicXML, Humdrum and ABC files inside its package; nothing
here touches the network. :data:`~notewave.symbolic.sources.music21_collections.MUSIC21_COLLECTIONS`
names the corpus folders exported (by default all of them: Bach chorales, Renaissance
and medieval vocal music, Baroque to Romantic works, ragtime, and the folk-tune
collections), with a style label, General MIDI programs and a licence for each;
:mod:`~notewave.symbolic.sources.music21_convert` turns one piece into MIDI (instruments,
chord-symbol tracks) and caches it; :mod:`~notewave.symbolic.sources.music21_jsb` finds
the Bach chorales that are in the JSB Chorales dataset.

:func:`export_music21` writes ``OUT/<split>/<corpus path>[_<tune>].mid`` plus
``OUT/data.json`` and ``OUT/DATA_CARD.md`` (:mod:`notewave.symbolic.sources.card`). A
piece's split is :func:`~notewave.symbolic.sources.card.split_for` of its split key,
except that pieces sharing a split key with a music21 chorale found in the JSB
Chorales take that JSB chorale's split (test before valid before train), so that no JSB
valid or test chorale is in music21's train split and data/jsb plus data/music21 agree.
A piece whose notes equal an earlier piece's (same onsets, durations and pitches in all
tracks) is left out and listed. Pieces music21 cannot parse or convert are skipped and
listed, never fatal.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import symusic
from tqdm import tqdm

from notewave.errors import ConfigError, DataError
from notewave.symbolic.sources.card import load_midi_bytes, piece_stats, remove_stale, split_for, write_card
from notewave.symbolic.sources.card import write_piece as _write_piece
from notewave.symbolic.sources.jsb import default_jsb_json, load_jsb_json
from notewave.symbolic.sources.music21_cache import cache_file, read_cache, write_cache
from notewave.symbolic.sources.music21_card import card_contents
from notewave.symbolic.sources.music21_collections import (
    MUSIC21_COLLECTIONS,
    MUSIC21_EXCLUDED,
    Music21Piece,
    corpus_root,
    list_music21_collections,
    music21_pieces,
    resolve_collections,
)
from notewave.symbolic.sources.music21_convert import convert_piece
from notewave.symbolic.sources.music21_jsb import jsb_references, match_jsb

__all__ = [
    "MUSIC21_COLLECTIONS",
    "MUSIC21_EXCLUDED",
    "default_jobs",
    "export_music21",
    "list_music21_collections",
]
_SPLIT_RANK = {"test": 0, "valid": 1, "train": 2}


def default_jobs() -> int:
    """Worker processes by default: 2, or 1 on a one-CPU machine."""
    return max(1, min(2, os.cpu_count() or 1))


def _convert_all(
    pieces: Sequence[Music21Piece], root: Path, cache_dir: Path, jobs: int, progress: bool
) -> tuple[list[dict[str, Any]], int]:
    """Results of :func:`convert_piece` for every piece, from the cache or converted; and the
    number converted now."""
    paths = [cache_file(cache_dir, piece, root) for piece in pieces]
    results: list[dict[str, Any] | None] = [read_cache(path) for path in paths]
    todo = [index for index, result in enumerate(results) if result is None]
    if not todo:
        return [result for result in results if result is not None], 0

    def finish(outcomes: Iterator[dict[str, Any]]) -> None:
        with tqdm(total=len(todo), unit="piece", desc="music21", disable=not progress) as bar:
            for index, result in zip(todo, outcomes, strict=True):
                write_cache(paths[index], result)
                results[index] = result
                bar.update()

    if jobs == 1 or len(todo) == 1:
        finish(convert_piece(pieces[index], root) for index in todo)
    else:
        # fork: workers inherit the imported modules; they only run music21, never torch.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context) as pool:
            chunk = max(1, min(8, len(todo) // (jobs * 8)))
            finish(pool.map(convert_piece, [pieces[i] for i in todo], [root] * len(todo), chunksize=chunk))
    return [result for result in results if result is not None], len(todo)


def _notes_hash(score: symusic.Score) -> str:
    """SHA-256 of every note's (onset, duration, pitch) in ticks, all tracks, sorted; onsets
    count from the first note, so that one tune notated with and without a pickup bar (padded
    differently) is still the same notes."""
    notes = sorted((note.time, note.duration, note.pitch) for track in score.tracks for note in track.notes)
    start = notes[0][0] if notes else 0
    notes = [(time - start, duration, pitch) for time, duration, pitch in notes]
    return hashlib.sha256(repr((int(score.ticks_per_quarter), notes)).encode()).hexdigest()


def _jsb_refs(collections: Sequence[str], jsb_json: str | os.PathLike[str] | None) -> tuple[list, str]:
    if "bach" not in collections:
        return [], "not needed (no Bach chorales exported)"
    try:
        path = Path(jsb_json) if jsb_json is not None else default_jsb_json()
        return jsb_references(load_jsb_json(path)), str(path)
    except DataError as exc:
        warnings.warn(f"JSB Chorales not found, no JSB de-duplication: {exc}", stacklevel=3)
        return [], f"NOT DONE: {exc}"


def _write(out: Path, split: str, name: str, data: bytes) -> Path:
    target = out / split / name
    if target.is_file() and target.read_bytes() == data:
        return target  # unchanged: no rewrite, so a cached rerun is fast
    return _write_piece(out, split, name, data)


def export_music21(
    out_dir: str | os.PathLike[str] = Path("data/music21"),
    collections: Sequence[str] | str | None = None,
    limit: int | None = None,
    jobs: int | None = None,
    *,
    only: Sequence[str] | None = None,
    jsb_json: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Export music21 corpus collections to ``out_dir/<split>/*.mid`` with a data card.

    ``collections``: corpus folder names (a list, or one comma-separated string;
    case-insensitive; default: all of ``MUSIC21_COLLECTIONS``). ``only``: shell patterns
    on piece keys (``"bach/bwv26.6"``, ``"oneills1850/*"``); ``limit``: at most N pieces
    per collection (the first in corpus order); ``jobs``: worker processes (default
    :func:`default_jobs`). ``jsb_json``: the JSB Chorales JSON used to de-duplicate the
    Bach chorales (default: :func:`~notewave.symbolic.sources.jsb.default_jsb_json`;
    when it cannot be found a ``UserWarning`` is issued and the card says the check was
    not done). Converted pieces are cached in ``out_dir/.cache``; a full run (no
    ``collections``, ``limit`` or ``only``) deletes cache entries it did not use. ``*.mid``
    files in the split folders that this run did not write are removed, so the card
    always matches the folder.

    Returns:
        The card as written to ``data.json``, plus ``"run"``: ``{"converted",
        "cached", "seconds"}`` (not written: it differs between runs).

    Raises:
        ConfigError: an unknown collection, ``limit``/``jobs`` not a positive integer,
            or no piece matching ``only``.
        DataError: no piece could be converted.
    """
    started = time.monotonic()
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"jobs must be a positive whole number or None, got {jobs!r}")
    chosen = resolve_collections(collections)
    root = corpus_root()
    pieces = music21_pieces(chosen, limit, only, root)
    if not pieces:
        raise ConfigError(f"no music21 piece matches {list(only or [])} in {', '.join(chosen)}")
    out = Path(out_dir)
    results, converted = _convert_all(pieces, root, out / ".cache", jobs or default_jobs(), progress)
    refs, jsb_origin = _jsb_refs(chosen, jsb_json)
    records: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    duplicates: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for piece, result in zip(pieces, results, strict=True):
        if not result.get("ok"):
            error = result.get("error", "")
            skipped.append({"piece": piece.key, "collection": piece.collection, "error": error})
            continue
        try:
            score = load_midi_bytes(result["midi"], piece.key)
        except DataError as exc:
            skipped.append({"piece": piece.key, "collection": piece.collection, "error": str(exc)})
            continue
        notes = _notes_hash(score)
        if notes in seen:
            duplicates.append({"piece": piece.key, "collection": piece.collection, "same_as": seen[notes]})
            continue
        seen[notes] = piece.key
        record: dict[str, Any] = {
            "name": piece.name,
            "split_key": piece.split_key,
            "style": piece.style,
            "collection": piece.collection,
            "origin": piece.key,
            "title": result.get("title"),
            "composer": result.get("composer"),
            "tracks": [track["name"] for track in result["tracks"]],
            "chord_symbols": result.get("chord_symbols", 0),
            "repeats_expanded": result.get("repeats_expanded", True),
            "pickup_padding_quarters": result.get("pickup_padding_quarters", 0.0),
            "sha256": hashlib.sha256(result["midi"]).hexdigest(),
            "notes_sha256": notes,
            **piece_stats(score),
            "midi": result["midi"],
        }
        if refs and piece.collection == "bach":
            found = match_jsb(score, refs)
            if found is not None:
                record["jsb_match" if found.pop("kind") == "chorale" else "jsb_melody"] = found
        records.append(record)
    if not records:
        raise DataError(f"music21: none of {len(pieces)} pieces could be converted ({skipped[0]['error']})")
    forced: dict[str, str] = {}
    for record in records:
        if "jsb_match" in record:
            split = record["jsb_match"]["split"]
            current = forced.get(record["split_key"], "train")
            forced[record["split_key"]] = min(split, current, key=_SPLIT_RANK.__getitem__)
    written = []
    for record in records:
        record["split"] = forced.get(record["split_key"]) or split_for(record["split_key"])
        if record["split_key"] in forced:
            record["split_by"] = "jsb"
        record["file"] = f"{record['split']}/{record['name']}"
        written.append(_write(out, record["split"], record.pop("name"), record.pop("midi")))
    remove_stale(out, "", written)
    if collections is None and limit is None and not only:
        used = {cache_file(out / ".cache", piece, root).name for piece in pieces}
        for stale in (out / ".cache").glob("*.json"):
            if stale.name not in used:
                stale.unlink()
    notes, extra, sections = card_contents(
        chosen, pieces, records, skipped, duplicates, refs, jsb_origin, limit, only
    )
    source = {
        "name": "music21's bundled corpus (Python package music21)",
        "version": metadata.version("music21"),
        "licence": "per collection (see Collections): compositions public domain; encodings under the "
        "terms in music21's corpus/license.txt and the files, some non-commercial or rights-reserved",
        "files": [str(root)],
    }
    title = "music21 corpus (General MIDI)"
    card = write_card(out, title, source, records, notes, extra=extra, sections=sections)
    seconds = round(time.monotonic() - started, 1)
    card["run"] = {"converted": converted, "cached": len(pieces) - converted, "seconds": seconds}
    return card

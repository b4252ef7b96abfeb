"""The music21-specific parts of the data card of ``notewave data music21``.

:func:`card_contents` turns the export's piece records, skipped and duplicate pieces and
JSB matches into the card's notes, the extra ``data.json`` keys (``collections``,
``excluded_collections``, ``jsb_dedup``, ``skipped``, ``duplicates``) and the extra
DATA_CARD.md sections written by :func:`notewave.symbolic.sources.card.write_card`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from notewave.symbolic.sources.card import SPLITS, split_for
from notewave.symbolic.sources.music21_collections import MUSIC21_COLLECTIONS, MUSIC21_EXCLUDED, Music21Piece
from notewave.symbolic.sources.music21_convert import CHORD_TRACK_NAME, MUSIC21_SOURCE_VERSION
from notewave.symbolic.sources.music21_jsb import MATCH_MEAN, MATCH_VOICE, MELODY_MATCH, NGRAM, JsbReference

SHOWN = 60  # skipped and duplicate pieces listed on the card (all of them are in data.json)


def split_counts(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """``{split: number of records}`` in :data:`~notewave.symbolic.sources.card.SPLITS` order."""
    counts = Counter(record["split"] for record in records)
    return {split: counts.get(split, 0) for split in SPLITS}


def collection_stats(
    chosen: Sequence[str],
    pieces: Sequence[Music21Piece],
    records: Sequence[dict[str, Any]],
    skipped: Sequence[dict[str, str]],
    duplicates: Sequence[dict[str, str]],
) -> dict[str, dict[str, Any]]:
    """Per collection: style, description, licence, pieces tried/written per split, bars,
    hours, notes, chord tracks, skipped and duplicate counts."""
    stats = {}
    for name in chosen:
        info = MUSIC21_COLLECTIONS[name]
        mine = [record for record in records if record["collection"] == name]
        stats[name] = {
            "style": info.style,
            "about": info.about,
            "licence": info.licence,
            "tried": sum(1 for piece in pieces if piece.collection == name),
            "pieces": len(mine),
            "splits": split_counts(mine),
            "bars": sum(record["bars"] for record in mine),
            "hours": round(sum(record["seconds"] for record in mine) / 3600, 3),
            "notes": sum(record["notes"] for record in mine),
            "chord_tracks": sum(1 for record in mine if CHORD_TRACK_NAME in record["tracks"][-1:]),
            "skipped": sum(1 for item in skipped if item["collection"] == name),
            "duplicates": sum(1 for item in duplicates if item["collection"] == name),
        }
    return stats


def jsb_stats(records: Sequence[dict[str, Any]], refs: Sequence[JsbReference], origin: str) -> dict[str, Any]:
    """How the Bach chorales met the JSB Chorales: matches per JSB split, pieces moved."""
    matched = [record for record in records if "jsb_match" in record]
    by_split = {split: [r for r in matched if r["jsb_match"]["split"] == split] for split in SPLITS}
    moved = Counter(
        (split_for(record["split_key"]), record["split"])
        for record in records
        if record.get("split_by") == "jsb" and split_for(record["split_key"]) != record["split"]
    )
    return {
        "jsb_json": origin,
        "rule": (
            f"outer voices as merged pitch classes, intervals mod 12, {NGRAM}-interval runs; same "
            f"chorale when soprano and bass each share >= {MATCH_VOICE} and on average >= {MATCH_MEAN} "
            "of the smaller run set; same tune only (reported, not moved) when the soprano alone shares "
            f">= {MELODY_MATCH}"
        ),
        "pieces_matched": {split: len(by_split[split]) for split in SPLITS},
        "jsb_chorales_found": {
            split: len({r["jsb_match"]["index"] for r in by_split[split]}) for split in SPLITS
        },
        "jsb_chorales": dict(Counter(ref.split for ref in refs)),
        "bach_pieces_unmatched": sum(
            1 for record in records if record["collection"] == "bach" and "jsb_match" not in record
        ),
        "same_tune_only": dict(Counter(r["jsb_melody"]["split"] for r in records if "jsb_melody" in r)),
        "moved": {f"{a}->{b}": count for (a, b), count in sorted(moved.items())},
    }


def _listed(items: Sequence[dict[str, str]], text: str) -> list[str]:
    lines = [text.format(**item) for item in items[:SHOWN]]
    if len(items) > SHOWN:
        lines.append(f"- ... and {len(items) - SHOWN} more (all are listed in data.json)")
    return lines or ["- none"]


def card_contents(
    chosen: Sequence[str],
    pieces: Sequence[Music21Piece],
    records: Sequence[dict[str, Any]],
    skipped: Sequence[dict[str, str]],
    duplicates: Sequence[dict[str, str]],
    refs: Sequence[JsbReference],
    jsb_origin: str,
    limit: int | None,
    only: Sequence[str] | None,
) -> tuple[list[str], dict[str, Any], list[tuple[str, list[str]]]]:
    """``(notes, extra data.json keys, extra card sections)`` for :func:`write_card`."""
    stats = collection_stats(chosen, pieces, records, skipped, duplicates)
    jsb = jsb_stats(records, refs, jsb_origin) if "bach" in chosen else {"jsb_json": jsb_origin}
    selection = ", ".join(chosen) if len(chosen) < len(MUSIC21_COLLECTIONS) else "all"
    notes = [
        f"Collections: {selection}"
        + (f"; at most {limit} pieces each" if limit else "")
        + (f"; pieces matching {', '.join(only)}" if only else "")
        + f". {len(pieces)} pieces tried, "
        f"{len(records)} written, {len(skipped)} skipped (music21 could not parse or convert them), "
        f"{len(duplicates)} left out as exact duplicates (same notes as an earlier piece).",
        "A piece is a score file, or one tune (X: number) of an ABC file holding several; Josquin's "
        "ABC files hold one tune per voice and give one piece each. Only one format per work is read "
        "(MusicXML over Humdrum over ABC); analyses (.rntxt) are ignored.",
        f"Conversion (notewave source version {MUSIC21_SOURCE_VERSION}): music21 parses each file and "
        "expands its repeats; notewave writes the MIDI with symusic (480 ticks per quarter; ties merged, "
        "grace notes dropped; velocity from the latest dynamic mark, 80 before one; the score's tempo "
        "marks, else 120 BPM, 80 BPM for the Bach chorales like data/jsb; time and key signatures). "
        f"{sum(1 for r in records if not r['repeats_expanded'])} pieces whose repeats music21 cannot "
        "expand are written as notated. "
        f"{sum(1 for r in records if r.get('pickup_padding_quarters'))} pieces start with a pickup: "
        "rests before it fill the first bar, so that bar lines fall where the score has them.",
        "Tracks: one per part, named after it. Programs (zero-based GM): a part named after an instrument "
        "gets that instrument; otherwise the file's music21 instrument where the collection's files are "
        "trusted (quartets, piano and song collections); otherwise singers get the collection's voice "
        "program (Bach 19 church organ like data/jsb; Renaissance and medieval voices 52 choir aahs; solo "
        "voices 53) and other parts the collection's default (folk tunes 73 flute, Irish fiddle tunes 40 "
        "violin, piano music 0). No drum tracks occur.",
        f"Chord symbols are removed from the parts; in lead-sheet collections (nottingham-dataset, "
        f"leadSheet) they become a '{CHORD_TRACK_NAME}' track of block chords (the symbol's pitches, lowest "
        "note in MIDI 48-59, velocity 64), each lasting until the next symbol: nottingham-dataset on 25 "
        "acoustic guitar, leadSheet on 0 piano.",
        "Style labels per collection (see Collections; leadSheet's Berlin rag is 'ragtime').",
        "Split key: the corpus path (plus '#<X number>' for a tune); Bach variants (bwv18.5-w, bwv18.5-lz) "
        "share 'bach/bwv18.5'; O'Neill tunes share 'oneills1850#<book number>' across the overlapping files. "
        "Pieces sharing a split key with a chorale found in the JSB Chorales take its split (see JSB).",
        "music21's Nottingham folder holds only 2 tunes (not the ~1,000 of the full Nottingham Music "
        "Database).",
    ]
    sections: list[tuple[str, list[str]]] = [
        (
            "Collections",
            [
                "| collection | style | pieces | train | valid | test | bars | hours | chords | skipped "
                "| dups | licence |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
                *[
                    f"| {name} | {s['style']} | {s['pieces']} | {s['splits']['train']} "
                    f"| {s['splits']['valid']} | {s['splits']['test']} | {s['bars']} | {s['hours']} "
                    f"| {s['chord_tracks']} | {s['skipped']} | {s['duplicates']} | {s['licence']} |"
                    for name, s in stats.items()
                ],
            ],
        ),
        ("Excluded corpus folders", [f"- {name}: {why}" for name, why in MUSIC21_EXCLUDED.items()]),
    ]
    if "bach" in chosen:
        found, total = jsb.get("jsb_chorales_found", {}), jsb.get("jsb_chorales", {})
        sections.append(
            (
                "JSB Chorales de-duplication",
                [
                    f"- JSB file: {jsb['jsb_json']}",
                    f"- Rule: {jsb.get('rule', 'not applied')}",
                    "- music21 pieces matched, by JSB split: "
                    + ", ".join(f"{k} {v}" for k, v in jsb.get("pieces_matched", {}).items()),
                    "- JSB chorales found: "
                    + ", ".join(f"{k} {found.get(k, 0)} of {total.get(k, 0)}" for k in SPLITS),
                    f"- Bach pieces with no JSB match (split by hash): {jsb.get('bach_pieces_unmatched', 0)}",
                    "- Same tune, other harmonisation (not moved), by JSB split: "
                    + (", ".join(f"{k} {v}" for k, v in jsb.get("same_tune_only", {}).items()) or "none"),
                    "- Split changed by the JSB rule (hash split -> JSB split): "
                    + (", ".join(f"{k} {v}" for k, v in jsb.get("moved", {}).items()) or "none"),
                ],
            )
        )
    sections.append(("Skipped", _listed(skipped, "- {piece}: {error}")))
    sections.append(("Exact duplicates left out", _listed(duplicates, "- {piece} (same notes as {same_as})")))
    extra = {
        "collections": stats,
        "excluded_collections": dict(MUSIC21_EXCLUDED),
        "jsb_dedup": jsb,
        "skipped": list(skipped),
        "duplicates": list(duplicates),
    }
    return notes, extra, sections

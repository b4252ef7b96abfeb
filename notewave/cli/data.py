"""``notewave data jsb|music21|freedoom|mma``: real MIDI sources as MIDI files.

See :mod:`notewave.symbolic.sources`. The audio sources (``game-music``, ``renders``) are in
:mod:`notewave.cli.data_audio`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from notewave.cli.data_audio import add_audio_cli
from notewave.symbolic.sources import (
    JSB_CHOIR_PROGRAM,
    JSB_DEFAULT_TEMPO_BPM,
    JSB_ENV_VAR,
    JSB_ORGAN_PROGRAM,
    JSB_SPLITS,
    MUSIC21_COLLECTIONS,
    MUSIC21_EXCLUDED,
    convert_jsb,
    export_freedoom,
    export_mma,
    export_music21,
    list_music21_collections,
    music21_default_jobs,
)


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave data {jsb,music21,freedoom,mma,game-music,renders}``; return the ``data`` parser.

    Each leaf parser sets ``func`` to a handler taking the parsed Namespace and returning
    an exit code (0 on success). Handlers let :class:`notewave.errors.NotewaveError`
    propagate so that the top-level CLI reports it.
    """
    data = subparsers.add_parser(
        "data",
        help="convert datasets (JSB Chorales, music21 corpus, Freedoom, MMA, game music, renders)",
        description="Convert datasets to MIDI and audio files for training and demos.",
    )
    sub = data.add_subparsers(
        dest="data_command", metavar="{jsb,music21,freedoom,mma,game-music,renders}", required=True
    )

    jsb = sub.add_parser(
        "jsb",
        help="convert the JSB Chorales JSON (16th-note frames) to four-track MIDI files",
        description=(
            "Write OUT/<split>/jsb_<split>_<index>.mid, one file per chorale: tracks Soprano, Alto, "
            "Tenor, Bass; 4/4; a fixed tempo; a 16th-note frame is ticks-per-quarter/4 ticks. "
            "Repeated equal pitches are merged into held notes (the dataset cannot tell them apart)."
        ),
    )
    jsb.add_argument(
        "json_path",
        nargs="?",
        type=Path,
        default=None,
        metavar="JSON_PATH",
        help=f"Jsb16thSeparated.json (default: ${JSB_ENV_VAR}, else ../shared/data/jsb_chorales/)",
    )
    jsb.add_argument("--out", type=Path, default=Path("data/jsb"), help="output folder (default: data/jsb)")
    jsb.add_argument(
        "--splits",
        nargs="+",
        choices=JSB_SPLITS,
        default=list(JSB_SPLITS),
        help="splits to convert (default: all)",
    )
    jsb.add_argument(
        "--tempo",
        type=float,
        default=JSB_DEFAULT_TEMPO_BPM,
        help="tempo in BPM (quarter notes/min; default: 80)",
    )
    jsb.add_argument(
        "--program",
        type=int,
        default=JSB_ORGAN_PROGRAM,
        help=f"General MIDI program, zero-based (default: {JSB_ORGAN_PROGRAM} church organ; "
        f"{JSB_CHOIR_PROGRAM} choir aahs)",
    )
    jsb.add_argument("--ticks-per-quarter", type=int, default=480, help="MIDI resolution (default: 480)")
    jsb.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    jsb.set_defaults(func=_run_jsb)

    m21 = sub.add_parser(
        "music21",
        help="export music21's bundled corpus to split, style-labelled MIDI files with a data card (offline)",
        description=(
            "Export the music of music21's local corpus (Bach chorales, Renaissance and medieval vocal "
            "music, Baroque to Romantic works, ragtime, folk and Irish tune books) to OUT/<split>/*.mid "
            "(split ~80/10/10 by a hash of the piece; Bach chorales found in the JSB Chorales take the "
            "JSB split), one track per part with its General MIDI program, plus OUT/DATA_CARD.md and "
            "OUT/data.json (style, collection, licence per piece). Conversions are cached in OUT/.cache."
        ),
    )
    m21.add_argument(
        "--out", type=Path, default=Path("data/music21"), help="output folder (default: data/music21)"
    )
    m21.add_argument(
        "--collections",
        "--collection",
        default=None,
        metavar="A,B,...",
        help="comma-separated corpus folders (default: all; see --list)",
    )
    m21.add_argument("--limit", type=int, default=None, help="export at most N pieces per collection")
    m21.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="PATTERN",
        help="only pieces whose key matches this shell pattern (e.g. 'bach/bwv26*'; repeatable)",
    )
    m21.add_argument(
        "--jobs",
        type=int,
        default=None,
        help=f"worker processes (default: {music21_default_jobs()}, at most 2 and the CPU count)",
    )
    m21.add_argument(
        "--list", action="store_true", help="list the collections, their styles and piece counts, then exit"
    )
    m21.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    m21.set_defaults(func=_run_music21)

    doom = sub.add_parser(
        "freedoom",
        help="write the General MIDI music of the Debian package freedoom (about 66 pieces)",
        description=(
            "Read the music lumps of Freedoom's WAD files and write each distinct MIDI piece, byte for "
            "byte, to OUT/<split>/freedoom<N>_<LUMP>.mid (split ~80/10/10 by a hash of the piece name), "
            "plus OUT/DATA_CARD.md and OUT/data.json. Needs: apt-get install freedoom."
        ),
    )
    doom.add_argument(
        "--out", type=Path, default=Path("data/freedoom"), help="output folder (default: data/freedoom)"
    )
    doom.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    doom.set_defaults(func=_run_freedoom)

    mma = sub.add_parser(
        "mma",
        help="render the accompaniment grooves of the Debian package mma to General MIDI files",
        description=(
            "Render each groove of MMA's standard library over a short chord chart with the mma command "
            "and copy its example songs, to OUT/<split>/mma_*.mid (split ~80/10/10 by a hash of the "
            "groove family), plus OUT/DATA_CARD.md and OUT/data.json. Renders are cached in OUT/.cache. "
            "Needs: apt-get install mma."
        ),
    )
    mma.add_argument("--out", type=Path, default=Path("data/mma"), help="output folder (default: data/mma)")
    mma.add_argument("--limit", type=int, default=None, help="render at most N grooves (default: all)")
    mma.add_argument(
        "--jobs", type=int, default=None, help="mma processes run at once (default: up to 4, at most CPUs)"
    )
    mma.add_argument("--no-examples", action="store_true", help="leave out the example songs mma ships")
    mma.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    mma.set_defaults(func=_run_mma)
    add_audio_cli(sub)
    return data


def _run_jsb(args: argparse.Namespace) -> int:
    written = convert_jsb(
        args.json_path,
        args.out,
        splits=args.splits,
        tempo_bpm=args.tempo,
        program=args.program,
        ticks_per_quarter=args.ticks_per_quarter,
        progress=not args.no_progress,
    )
    for split, paths in written.items():
        print(f"jsb {split}: {len(paths)} MIDI files in {Path(args.out) / split}")
    print(f"jsb: {sum(len(paths) for paths in written.values())} MIDI files written")
    return 0


def _run_music21(args: argparse.Namespace) -> int:
    if args.list:
        for name, count in list_music21_collections().items():
            info = MUSIC21_COLLECTIONS[name]
            print(f"{name:20s} {info.style:12s} {count:6d} pieces  {info.about}")
        for name, why in MUSIC21_EXCLUDED.items():
            print(f"{name:20s} {'(left out)':12s} {'':13s} {why}")
        return 0
    card = export_music21(
        args.out,
        args.collections,
        args.limit,
        args.jobs,
        only=args.only,
        progress=not args.no_progress,
    )
    _print_card("music21", args.out, card)
    run, jsb = card["run"], card.get("jsb_dedup", {})
    styles = ", ".join(f"{name} {count}" for name, count in card["summary"]["styles"].items())
    print(f"music21: styles: {styles}")
    if "pieces_matched" in jsb:
        matched = ", ".join(f"{split} {count}" for split, count in jsb["pieces_matched"].items())
        print(f"music21: Bach chorales matched in the JSB Chorales, by JSB split: {matched}")
    print(
        f"music21: {len(card['skipped'])} pieces skipped, {len(card['duplicates'])} exact duplicates left "
        f"out; {run['converted']} converted, {run['cached']} from the cache, {run['seconds']} s"
    )
    return 0


def _print_card(name: str, out: Path, card: dict) -> None:
    summary = card["summary"]
    splits = ", ".join(f"{split} {count}" for split, count in summary["splits"].items())
    print(
        f"{name}: {summary['pieces']} MIDI files in {out} ({splits}); {summary['bars']} bars, "
        f"{summary['hours']} h; {summary['pitched_tracks']} pitched + {summary['drum_tracks']} drum tracks; "
        f"card: {out / 'DATA_CARD.md'}"
    )


def _run_freedoom(args: argparse.Namespace) -> int:
    _print_card("freedoom", args.out, export_freedoom(args.out, progress=not args.no_progress))
    return 0


def _run_mma(args: argparse.Namespace) -> int:
    card = export_mma(
        args.out, args.limit, args.jobs, examples=not args.no_examples, progress=not args.no_progress
    )
    _print_card("mma", args.out, card)
    return 0

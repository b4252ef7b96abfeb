"""``notewave data game-music|renders``: real audio for the codec, the audio LM and the transcriber.

See :mod:`notewave.audio.sources`. Registered on the ``data`` parser by :mod:`notewave.cli.data`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_audio_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``game-music`` and ``renders`` on the ``notewave data`` subparsers ``sub``."""
    games = sub.add_parser(
        "game-music",
        help="decode the Debian game-music packages to mono 32 kHz FLAC with held-out test tracks",
        description=(
            "Decode the music of wesnoth-1.16-music, warzone2100-music, ufoai-music, hyperrogue-music and "
            "nexuiz-music (folders of Ogg Vorbis/Opus files, or zip archives) to mono FLAC (16-bit, soxr HQ "
            "resampling) in OUT/<package>/train/ and OUT/<package>/test/: every N-th track of a package by "
            "sorted path is held out whole. Decoded tracks are cached (OUT/.game-music-cache.json); "
            "OUT/README.md and OUT/data.json are the data card."
        ),
    )
    games.add_argument(
        "--packages",
        nargs="+",
        default=None,
        metavar="NAME",
        help="short or Debian package names (default: all; see --list)",
    )
    games.add_argument(
        "--out", type=Path, default=Path("data/audio"), help="output folder (default: data/audio)"
    )
    games.add_argument("--jobs", type=int, default=2, help="decoding processes (default: 2)")
    games.add_argument(
        "--holdout-every", type=int, default=5, help="hold out every N-th track per package (default: 5)"
    )
    games.add_argument("--sample-rate", type=int, default=32000, help="output rate in Hz (default: 32000)")
    games.add_argument(
        "--max-seconds", type=float, default=None, help="keep only the first S seconds of each track"
    )
    games.add_argument("--list", action="store_true", help="list the packages and whether each is installed")
    games.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    games.set_defaults(func=_run_game_music)

    renders = sub.add_parser(
        "renders",
        help="render MIDI folders with FluidSynth (several SoundFonts, reverb, chorus) to mono FLAC",
        description=(
            "Render each MIDI file of the folders (its first --max-seconds) with --fonts-per-piece of the "
            "SoundFonts, reverb and chorus on, loudness-normalised, to "
            "OUT/<source>/<split>/<piece>__<font>.flac: a file keeps the split of its MIDI folder "
            "(train/valid/test subfolders, as notewave data jsb|music21|freedoom|mma write them; other "
            "files: every --holdout-every-th is test). Renders are cached (OUT/.renders-cache.json); "
            "OUT/README.md and OUT/data.json are the data card."
        ),
    )
    renders.add_argument(
        "--midi",
        action="append",
        required=True,
        metavar="DIR[:NAME]",
        help="a MIDI folder, searched recursively (repeatable); NAME: the output folder (default: DIR's)",
    )
    renders.add_argument(
        "--soundfont",
        action="append",
        default=None,
        metavar="SF2",
        help="a SoundFont to render with (repeatable; default: every installed one)",
    )
    renders.add_argument("--fonts-per-piece", type=int, default=1, help="SoundFonts per piece (default: 1)")
    renders.add_argument(
        "--out", type=Path, default=Path("data/renders"), help="output folder (default: data/renders)"
    )
    renders.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="render the first S seconds of each piece (default: 60; 0: all)",
    )
    renders.add_argument("--limit", type=int, default=None, help="at most N pieces per folder and split")
    renders.add_argument("--no-reverb", action="store_true", help="turn FluidSynth's reverb off")
    renders.add_argument("--no-chorus", action="store_true", help="turn FluidSynth's chorus off")
    renders.add_argument(
        "--holdout-every", type=int, default=5, help="for files outside split folders (default: 5)"
    )
    renders.add_argument("--sample-rate", type=int, default=32000, help="output rate in Hz (default: 32000)")
    renders.add_argument("--jobs", type=int, default=2, help="render processes (default: 2)")
    renders.add_argument(
        "--seed", type=int, default=0, help="seed of the SoundFont draw per piece (default: 0)"
    )
    renders.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    renders.set_defaults(func=_run_renders)


def _run_game_music(args: argparse.Namespace) -> int:
    from notewave.audio.sources import GAME_MUSIC, export_game_music

    if args.list:
        for name, package in GAME_MUSIC.items():
            state = "installed" if package.installed() else f"missing (apt-get install {package.package})"
            print(f"{name:12s} {package.package:20s} {state:10s}  {package.licence}; {package.about}")
        return 0
    card = export_game_music(
        args.out,
        args.packages,
        holdout_every=args.holdout_every,
        sample_rate=args.sample_rate,
        jobs=args.jobs,
        progress=not args.no_progress,
        max_seconds=args.max_seconds,
    )
    for name, p in card["packages"].items():
        print(
            f"{name}: {p['tracks']['train']} train tracks ({p['hours']['train']:.2f} h), "
            f"{p['tracks']['test']} test tracks ({p['hours']['test']:.2f} h); {p['licence']}"
        )
    totals, run = card["totals"], card["run"]
    print(
        f"game-music: {totals['hours']['train']:.2f} h train, {totals['hours']['test']:.2f} h test "
        f"in {args.out} "
        f"(card: {Path(args.out) / 'README.md'}); {run['written']} written, {run['cached']} from the cache, "
        f"{len(run['skipped'])} left out, {len(run['removed'])} stale files removed, {run['seconds']} s"
    )
    return 0


def _run_renders(args: argparse.Namespace) -> int:
    from notewave.audio.sources import export_renders

    card = export_renders(
        args.out,
        args.midi,
        args.soundfont,
        per_piece_fonts=args.fonts_per_piece,
        reverb=not args.no_reverb,
        chorus=not args.no_chorus,
        max_seconds=args.max_seconds or None,
        limit=args.limit,
        jobs=args.jobs,
        seed=args.seed,
        sample_rate=args.sample_rate,
        holdout_every=args.holdout_every,
        progress=not args.no_progress,
    )
    for name, s in card["sources"].items():
        splits = ", ".join(
            f"{k} {s['pieces'][k]} pieces / {s['renders'][k]} renders / {s['hours'][k]:.3f} h"
            for k in s["renders"]
        )
        print(f"{name}: {splits}")
    run = card["run"]
    print(
        f"renders: {card['totals']['renders']} renders, {card['totals']['hours']:.3f} h in {args.out} "
        f"(fonts: {', '.join(card['fonts'])}; card: {Path(args.out) / 'README.md'}); "
        f"{run['written']} written, {run['cached']} from the cache, {len(run['skipped'])} left out, "
        f"{run['seconds']} s"
    )
    return 0

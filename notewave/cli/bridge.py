"""CLI commands of the bridge: ``render``, ``transcribe`` and ``train transcriber``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from symusic import Score

from notewave.bridge.render import render_file, render_folder
from notewave.bridge.transcription.train import train_transcriber
from notewave.bridge.transcription.transcribe import transcribe_file
from notewave.cli.options import add_precision_option
from notewave.errors import ConfigError


def _cli_render(args: argparse.Namespace) -> int:
    """Run the ``render`` subcommand; returns exit status 0 (errors propagate as NotewaveError)."""
    opts = dict(sample_rate=args.sample_rate, soundfont=args.soundfont, stereo=args.stereo)
    opts.update(tail_seconds=args.tail, normalize=args.normalize, max_seconds=args.max_seconds or None)
    if Path(args.input).is_dir():
        written = render_folder(args.input, args.output, pattern=args.pattern, **opts)
        print(f"rendered {len(written)} file(s) into {args.output}")
    else:
        print(f"rendered {render_file(args.input, args.output, **opts)}")
    return 0


def add_render_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave render IN OUT [options]`` on an argparse subparsers object.

    IN is a MIDI file (OUT a .wav file) or a folder (OUT a folder). The parser's ``func``
    default takes the parsed Namespace and returns an exit status. Returns the subparser.
    """
    about = "render MIDI (a file, or every file in a folder) to 16-bit WAV with FluidSynth"
    parser = subparsers.add_parser("render", help=about, description=about)
    parser.add_argument("input", metavar="IN", help="a MIDI file, or a folder of them")
    parser.add_argument("output", metavar="OUT", help="the .wav file, or a folder when IN is a folder")
    parser.add_argument("--sample-rate", type=int, default=32000, help="output rate in Hz (default 32000)")
    parser.add_argument("--soundfont", help=".sf2 file (default: $NOTEWAVE_SOUNDFONT, then system)")
    parser.add_argument("--stereo", action="store_true", help="write stereo instead of mono")
    parser.add_argument("--tail", type=float, default=1.0, help="seconds kept after the last note-off")
    parser.add_argument("--normalize", choices=["peak", "loudness"], help="output level normalization")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=1200.0,
        help="refuse files whose audio would last longer, in seconds (default 1200 = 20 min; 0: no cap)",
    )
    parser.add_argument("--pattern", default="*.mid", help="glob of MIDI files in a folder (default *.mid)")
    parser.set_defaults(func=_cli_render)
    return parser


def _cli_transcribe(args: argparse.Namespace) -> int:
    kw = {k: getattr(args, k) for k in ("checkpoint", "onset_threshold", "frame_threshold")}
    out = transcribe_file(args.input, args.output, args.mono, args.tokens, **kw)
    extra = f", tokens: {args.tokens}" if args.tokens else ""
    print(f"transcribed {args.input} -> {out} ({Score.from_midi(out.read_bytes()).note_num()} notes){extra}")
    return 0


def add_transcribe_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave transcribe IN.wav OUT.mid [--mono] [--tokens OUT.json] [--checkpoint DIR]``."""
    about = "transcribe audio to MIDI (polyphonic network, or --mono pYIN for a sung/hummed melody)"
    p = subparsers.add_parser("transcribe", help=about, description=about)
    p.add_argument("input", metavar="IN", help="audio file (WAV, FLAC, OGG, ...; any rate and channel count)")
    p.add_argument("output", metavar="OUT", help="MIDI file to write")
    p.add_argument("--mono", action="store_true", help="monophonic pYIN path (one voice, C2..C7)")
    p.add_argument("--tokens", metavar="JSON", help="also write the symbolic tokenizer's tokens as JSON")
    p.add_argument("--checkpoint", metavar="DIR", help="transcriber checkpoint (default: the shipped one)")
    p.add_argument("--onset-threshold", type=float, default=0.5, help="onset threshold (default 0.5)")
    p.add_argument("--frame-threshold", type=float, default=0.5, help="frame threshold (default 0.5)")
    p.set_defaults(func=_cli_transcribe)
    return p


def _augmentation(args: argparse.Namespace):
    """The ``Augmentation`` of ``train transcriber``'s options (``False`` with ``--no-augment``).

    Raises:
        ConfigError: a source-program or synth probability outside [0, 1], a bad drum velocity range or
            kit list.
    """
    from notewave.bridge.transcription.augment import Augmentation

    if not args.augment:
        return False
    for name in ("source_programs", "synth"):
        if not 0 <= getattr(args, name) <= 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(args, name)}")
    try:
        low, high = (float(x) for x in args.drum_velocity.split(","))
    except ValueError:
        raise ConfigError(
            f"--drum-velocity must be LO,HI (e.g. 0.6,1.2), got {args.drum_velocity!r}"
        ) from None
    if not 0 < low <= high:
        raise ConfigError(f"--drum-velocity needs 0 < LO <= HI, got {args.drum_velocity!r}")
    try:
        kits = tuple(int(k) for k in args.drum_kits.split(","))
    except ValueError:
        kits = ()
    if not kits or not all(0 <= k <= 127 for k in kits):
        raise ConfigError(
            f"--drum-kits must be drum kit programs 0..127 (e.g. 0,8,25), got {args.drum_kits!r}"
        )
    return Augmentation(
        source_programs=args.source_programs,
        drum_velocity=(low, high),
        drum_kits=kits,
        ensemble=args.ensemble,
        synth=args.synth,
    )


def _network_config(args: argparse.Namespace):
    """The ``TranscriberConfig`` of ``train transcriber``'s size options (None when none is given).

    Raises:
        ConfigError: sizes below 1, ``--fmin`` outside (0, fmax) (from ``TranscriberConfig``).
    """
    from notewave.bridge.transcription.model import TranscriberConfig

    sizes = {k: getattr(args, k) for k in ("conv_channels", "d_model", "rnn_hidden", "fmin")}
    sizes = {k: v for k, v in sizes.items() if v is not None}
    return TranscriberConfig(**sizes) if sizes else None


def _cli_train(args: argparse.Namespace) -> int:
    summary = train_transcriber(
        args.midi,
        args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        soundfonts=args.soundfont,
        resume=args.resume,
        seed=args.seed,
        precision=args.precision,
        augment=_augmentation(args),
        holdout_soundfont=args.holdout_soundfont or None,
        init=args.init,
        config=_network_config(args),
        harmonic_channels=args.harmonic_channels,
        harmonic_negatives=args.harmonic_negatives,
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    print(f"checkpoints: {Path(args.out) / 'best'} (lowest validation loss), {Path(args.out) / 'last'}")
    return 0


def add_train_transcriber_cli(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train transcriber --midi DIR [--midi DIR2] --out RUN_DIR [--steps N] [--resume]
    [--init DIR] [--soundfont SF ...] [--holdout-soundfont SF] [--augment | --no-augment]``."""
    from notewave.bridge.transcription.augment import HOLDOUT_SOUNDFONT

    about = "train the audio-to-notes transcriber on FluidSynth renders of MIDI folders"
    p = sub.add_parser("transcriber", help=about, description=about + " (the JSB test split is refused).")
    p.add_argument(
        "--midi",
        action="append",
        required=True,
        metavar="DIR",
        help="MIDI folder (repeatable; its train/ split, else all but every 20th file; a folder given "
        "twice is drawn twice as often); multi-track MIDI welcome: with --augment its drum tracks are "
        "rendered but never labels",
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints best/ and last/)")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    p.add_argument("--batch-size", type=int, default=8, help="5-second crops per step (default 8)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    p.add_argument(
        "--eval-every", type=int, default=100, help="validate and save every N steps (default 100)"
    )
    p.add_argument(
        "--soundfont",
        action="append",
        help="SoundFont for renders (repeatable; default: every installed one but the held-out one, or "
        "with --no-augment TimGM6mb and FluidR3_GM)",
    )
    p.add_argument(
        "--holdout-soundfont",
        default=HOLDOUT_SOUNDFONT,
        metavar="SF",
        help=f"SoundFont (path, file name or stem) never rendered in training (default {HOLDOUT_SOUNDFONT}; "
        "'' for none)",
    )
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reverb/chorus, EQ, drums under the parts, gain -12..0 dB, noise at 20-40 dB SNR (default on)",
    )
    p.add_argument(
        "--source-programs",
        type=float,
        default=0.3,
        metavar="P",
        help="with --augment: probability that a voice keeps its own GM program (default 0.3)",
    )
    p.add_argument(
        "--drum-velocity",
        default="0.6,1.2",
        metavar="LO,HI",
        help="with --augment: range of the factor on drum velocities (default 0.6,1.2)",
    )
    p.add_argument(
        "--drum-kits",
        default="0",
        metavar="K,K,...",
        help="with --augment: GM drum kit programs to draw one from per medley (default 0, the standard"
        " kit; the GM2 set: 0,8,16,24,25,32,40,48)",
    )
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="with --augment: train on the ensemble family 48-55 too (held out by default)",
    )
    p.add_argument(
        "--synth",
        type=float,
        default=0.0,
        metavar="P",
        help="with --augment: share of medleys whose pitched parts are played by random additive-synthesis"
        " instruments instead of a SoundFont (default 0)",
    )
    p.add_argument(
        "--init", metavar="DIR", help="start from this transcriber checkpoint (e.g. the shipped one)"
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--harmonic-channels",
        type=int,
        metavar="C",
        help="add a harmonic stack of C channels (semitone spectrum at the harmonics' shifts) to a network"
        " without one, new or from --init (its output starts at zero)",
    )
    p.add_argument(
        "--harmonic-negatives",
        type=float,
        default=1.0,
        metavar="W",
        help="weight of the onset negatives at a true onset's octaves and harmonics in the loss"
        " (default 1: unweighted; against octave and harmonic false notes)",
    )
    sizes = p.add_argument_group("network and features of a new transcriber (not with --init or --resume)")
    sizes.add_argument("--conv-channels", type=int, help="channels of the first conv stack (default 16)")
    sizes.add_argument("--d-model", type=int, help="width after the conv stack (default 192)")
    sizes.add_argument("--rnn-hidden", type=int, help="GRU hidden size per direction (default 96)")
    sizes.add_argument("--fmin", type=float, help="lowest mel band edge in Hz (default 30)")
    add_precision_option(p)
    p.set_defaults(func=_cli_train)
    return p


def _cli_eval_roundtrip(args: argparse.Namespace) -> int:
    from notewave.bridge.roundtrip import evaluate_roundtrip, heldout_pieces

    pieces = heldout_pieces(args.midi, args.pieces)
    report = evaluate_roundtrip(pieces, args.seconds, args.soundfont, args.checkpoint, engine=args.engine)
    where = ", ".join(str(m) for m in args.midi) if args.midi else "data/jsb/test"
    print(f"{len(pieces)} held-out piece(s) of {where}, first {args.seconds:g} s each")
    sound = "SoundFont" if report.engine == "fluidsynth" else "TiMidity config"
    print(f"{report.engine}: {sound} {report.soundfont}; transcriber {report.checkpoint}")
    print(report.table(), end="")
    if args.json is not None:
        print(f"JSON: {report.write_json(args.json)}")
    print(f"wall time: {report.wall_seconds:.1f} s")
    return 0


def add_eval_roundtrip_cli(eval_sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``eval roundtrip [--midi DIR ...] [--engine fluidsynth|timidity] [--soundfont PATH]
    [--pieces N] [--seconds S] [--checkpoint DIR] [--json OUT]`` on the ``eval`` group's subparsers."""
    about = "note F1 of the transcriber on renders of held-out MIDI (MIDI -> audio -> MIDI)"
    p = eval_sub.add_parser(
        "roundtrip",
        help=about,
        description=about + ": per piece and the mean, onset only (50 ms, mir_eval) and with offsets.",
    )
    p.add_argument(
        "--midi",
        action="append",
        type=Path,
        metavar="DIR",
        help="MIDI folder (repeatable); its held-out files: test/, a test or valid split, valid/ beside "
        "train/, else every 20th file (default: data/jsb/test, the JSB test chorales)",
    )
    p.add_argument(
        "--engine",
        choices=["fluidsynth", "timidity"],
        default="fluidsynth",
        help="synthesizer of the renders: FluidSynth (default) or TiMidity++ with Freepats (drum tracks "
        "are rendered by both, never reference notes)",
    )
    p.add_argument(
        "--soundfont",
        metavar="PATH",
        help="FluidSynth: .sf2/.sf3 (default: as `notewave render`); TiMidity: a .cfg (default Freepats)",
    )
    p.add_argument("--pieces", type=int, default=8, help="pieces per folder (default 8)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds of each piece (default 20)")
    p.add_argument("--checkpoint", metavar="DIR", help="transcriber checkpoint (default: the shipped one)")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="also write the results as JSON")
    p.set_defaults(func=_cli_eval_roundtrip)
    return p

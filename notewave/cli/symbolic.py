"""CLI commands of the symbolic side: ``train symbolic``, ``generate`` and ``eval symbolic``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from notewave.cli.options import add_precision_option, add_range_margin_option, guide_options
from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT


def _train(args: argparse.Namespace) -> int:
    from notewave.symbolic.train import train_symbolic

    summary = train_symbolic(
        args.data,
        args.out,
        config=args.config,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seq_len=args.seq_len,
        shifts=range(-args.transpose, args.transpose + 1) if args.transpose else (0,),
        precision=args.precision,
        resume=args.resume,
        eval_every=args.eval_every,
        max_val_windows=args.val_windows,
        fill_share=args.fill_share,
        seed=args.seed,
        styles=args.styles.split(",") if args.styles else None,
        init=args.init,
        boost=_boosts(args.boost),
        cursor=args.cursor or args.harmony,
        harmony=args.harmony,
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    print(f"checkpoints: {Path(args.out) / 'best'} (lowest validation NLL), {Path(args.out) / 'last'}")
    return 0


def _boosts(items: list[str] | None) -> dict[str, float]:
    from notewave.errors import ConfigError

    out = {}
    for item in items or []:
        style, _, factor = item.partition("=")
        try:
            out[style] = float(factor)
        except ValueError:
            raise ConfigError(f"--boost takes STYLE=FACTOR, e.g. bach=4, got {item!r}") from None
    return out


def add_train_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``train symbolic``."""
    p = sub.add_parser(
        "symbolic",
        help="train the composer (MIDI-token transformer)",
        description="Train a MidiLM on multitrack tokens. DATA folders hold MIDI files (or train/ and "
        "valid/ subfolders, with the data.json of `notewave data` giving each piece's style); append "
        ":STYLE to give a folder's pieces a style, e.g. data/jsb:bach. Pieces are cached in "
        "OUT/pieces-*.npz. Run under `torchrun --nproc_per_node N` for data-parallel training.",
    )
    p.add_argument(
        "--data", action="append", required=True, metavar="DIR[:STYLE]", help="MIDI folder (repeatable)"
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints best/ and last/)")
    p.add_argument(
        "--config", default="medium", help="model size: tiny, small, medium, large (default medium)"
    )
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per step and process (default 8)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument(
        "--seq-len", type=int, default=None, help="window length in tokens (default: model context)"
    )
    p.add_argument(
        "--transpose", type=int, default=6, help="augment with shifts of -N+1..+N semitones (default 6)"
    )
    add_precision_option(p)
    p.add_argument(
        "--eval-every", type=int, default=250, help="validate and save every N steps (default 250)"
    )
    p.add_argument("--val-windows", type=int, default=40, help="validation windows per style (default 40)")
    p.add_argument(
        "--fill-share", type=float, default=0.3, help="share of bar-fill (infilling) windows (default 0.3)"
    )
    p.add_argument("--styles", default=None, help="comma-separated style tokens of a new model")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument(
        "--init", type=Path, default=None, help="start from this checkpoint's weights (fresh optimizer)"
    )
    p.add_argument(
        "--boost", action="append", metavar="STYLE=FACTOR", help="sample a style FACTOR times more often"
    )
    p.add_argument(
        "--cursor",
        action="store_true",
        help="add the metrical cursor embedding (where the track has reached in the bar; "
        "zero-initialised on an --init model without one)",
    )
    p.add_argument(
        "--harmony",
        action="store_true",
        help="also the pitches other tracks sound at each onset (implies --cursor; grows an --init "
        "cursor model's table by zero rows)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_train)


def _sampling_options(p: argparse.ArgumentParser, density: bool = True) -> None:
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_SYMBOLIC_CHECKPOINT, help="composer folder")
    p.add_argument("--style", default=None, help="style token, e.g. bach, jazz, irish (see the model card)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--key",
        type=float,
        default=None,
        help="weight of the key guide toward the pitch classes of the bars around (0: the model alone)",
    )
    if density:  # continue and infill: the density guide
        p.add_argument(
            "--density",
            type=float,
            default=None,
            help="nats taken from closing a playing track's bar under 0.8 (generate: 0.5) of the "
            "notes it plays per bar in the bars around (default 8; 0: off)",
        )
        p.add_argument(
            "--key-balance",
            type=float,
            default=None,
            help="weight of the key guide's balance term, which steers the new notes' pitch-class mix "
            "toward the bars around (default 0.5; 0: off; off with --key 0 too)",
        )
        p.add_argument(
            "--lengths",
            type=float,
            default=None,
            help="weight of the length guide toward the note lengths each track plays in the bars "
            "around (default 1.5; 0: off)",
        )
        add_range_margin_option(p)
    p.add_argument("--wav", type=Path, default=None, help="also render the result to this WAV file")
    p.add_argument("--png", type=Path, default=None, help="also draw a piano roll to this PNG file")
    p.add_argument("--sample-rate", type=int, default=32000, help="WAV sample rate in Hz (default 32000)")
    p.add_argument(
        "--soundfont", type=Path, default=None, help="SoundFont for --wav (default: found automatically)"
    )


def _sampling(args: argparse.Namespace) -> dict:
    return {
        "style": args.style,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "seed": args.seed,
        "progress": True,
        **guide_options(args, ("key", "key_balance", "density", "lengths")),
    }


def _write(args: argparse.Namespace, score, title: str, mark_tick: int | None = None) -> int:
    """Save the MIDI (after rendering, so that a render error leaves no file), then the PNG and WAV."""
    from notewave.pipelines.composer import Composer

    if args.wav is not None:
        from notewave.bridge.render import render_midi, write_wav

        wav, sr = render_midi(score, sample_rate=args.sample_rate, soundfont=args.soundfont)
    Composer.save(score, args.out)
    print(f"MIDI: {args.out}")
    if args.png is not None:
        from notewave.symbolic.plot import plot_piano_roll

        plot_piano_roll(score, args.png, mark_tick=mark_tick, title=title)
        print(f"PNG:  {args.png}")
    if args.wav is not None:
        write_wav(args.wav, wav, sr)
        print(f"WAV:  {args.wav} ({wav.shape[-1] / sr:.1f} s at {sr} Hz)")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from notewave.core.midi import bar_grid
    from notewave.pipelines.composer import Composer

    composer = Composer.from_pretrained(args.checkpoint)
    score = composer.continue_midi(
        args.prompt,
        bars=args.bars,
        instruments=args.instruments,
        prompt_bars=args.prompt_bars,
        keep_playing=not args.allow_silent_tracks,
        **_sampling(args),
    )
    from notewave.core.midi import load_score
    from notewave.symbolic.compose import first_bars

    prompt = load_score(args.prompt)
    prompt = first_bars(prompt, args.prompt_bars) if args.prompt_bars else prompt
    start = int(bar_grid(prompt).lines[-1])  # where the continuation begins
    return _write(args, score, f"{args.prompt.name} + {args.bars} bars", start)


def add_generate_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``generate`` (continue), ``infill`` and ``accompany``."""
    p = sub.add_parser(
        "generate",
        help="continue a MIDI prompt",
        description="Continue a MIDI prompt by N bars in its own tracks, tempo and meter.",
    )
    p.add_argument("--prompt", required=True, type=Path, help="prompt MIDI file")
    p.add_argument("--bars", type=int, default=8, help="bars to add (default 8)")
    p.add_argument("--prompt-bars", type=int, default=None, help="use only the first N bars of the prompt")
    p.add_argument(
        "--instruments", default=None, help="parts that join in, e.g. bass,drums or Lead=81 (GM program)"
    )
    p.add_argument(
        "--allow-silent-tracks",
        action="store_true",
        help="let tracks that play at the end of the prompt rest for whole bars (default: they play on)",
    )
    p.add_argument("--out", required=True, type=Path, help="output MIDI file (prompt + continuation)")
    _sampling_options(p)
    p.set_defaults(func=_generate)

    f = sub.add_parser(
        "infill",
        help="regenerate a span of bars of a MIDI file",
        description="Regenerate bars FIRST-LAST (1-based, inclusive) of all or the named tracks, "
        "from the music on both sides; everything else stays note for note.",
    )
    f.add_argument("midi", type=Path, help="MIDI file")
    f.add_argument("--bars", required=True, help="span of bars, e.g. 9-12 (or one bar: 9)")
    f.add_argument(
        "--tracks", default=None, help='track names to regenerate, e.g. "Bass,Drums" (default all)'
    )
    f.add_argument(
        "--allow-silent-tracks",
        action="store_true",
        help="let tracks that play on both sides of the span rest in it (default: they play on)",
    )
    f.add_argument("--out", required=True, type=Path, help="output MIDI file")
    _sampling_options(f)
    f.set_defaults(func=_infill)

    a = sub.add_parser(
        "accompany",
        help="add parts under a MIDI file",
        description="Keep every track and write new ones over the whole piece: satb (alto, tenor, bass "
        "under a melody), bass, drums, piano, guitar, strings, organ, choir, brass, flute, or NAME=PROGRAM.",
    )
    a.add_argument("midi", type=Path, help="MIDI file")
    a.add_argument("--add", required=True, help="parts to add, e.g. satb or bass,drums")
    a.add_argument("--out", required=True, type=Path, help="output MIDI file")
    a.add_argument(
        "--consonance",
        type=float,
        default=None,
        help="nats taken from pitches dissonant with the melody where they are written "
        "(default 2; 0: the model alone)",
    )
    _sampling_options(a, density=False)
    a.set_defaults(func=_accompany)


def _span(text: str) -> tuple[int, int]:
    from notewave.errors import ConfigError

    first, _, last = text.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        raise ConfigError(f"--bars must be FIRST-LAST bar numbers such as 9-12, got {text!r}") from None


def _infill(args: argparse.Namespace) -> int:
    from notewave.core.midi import bar_grid
    from notewave.pipelines.composer import Composer

    span = _span(args.bars)
    composer = Composer.from_pretrained(args.checkpoint)
    options = {**_sampling(args), "keep_playing": not args.allow_silent_tracks}
    score = composer.infill(args.midi, span, args.tracks, **options)
    mark = int(bar_grid(score).lines[span[0] - 1])
    return _write(args, score, f"{args.midi.name}: bars {span[0]}-{span[1]} infilled", mark)


def _accompany(args: argparse.Namespace) -> int:
    from notewave.pipelines.composer import Composer

    composer = Composer.from_pretrained(args.checkpoint)
    options = _sampling(args)
    if args.consonance is not None:
        options["consonance"] = args.consonance
    score = composer.accompany(args.midi, args.add, **options)
    return _write(args, score, f"{args.midi.name} + {args.add}")

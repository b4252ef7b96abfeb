"""CLI commands of the symbolic side: ``train symbolic``, ``generate`` and ``eval symbolic``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from notewave.cli.options import add_precision_option
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
        bpe_vocab=args.bpe,
        eval_every=args.eval_every,
        seed=args.seed,
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    print(f"checkpoints: {Path(args.out) / 'best'} (lowest validation NLL), {Path(args.out) / 'last'}")
    return 0


def add_train_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``train symbolic``."""
    p = sub.add_parser(
        "symbolic",
        help="train the MIDI-token transformer",
        description="Train a MidiLM. DATA folders hold MIDI files (or train/ and valid/ subfolders); "
        "append :STYLE to give their pieces a style token, e.g. data/jsb:bach. "
        "Run under `torchrun --nproc_per_node N` for data-parallel training.",
    )
    p.add_argument(
        "--data", action="append", required=True, metavar="DIR[:STYLE]", help="MIDI folder (repeatable)"
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints best/ and last/)")
    p.add_argument("--config", default="small", help="model size: tiny, small, medium, large (default small)")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per step and process (default 8)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument(
        "--seq-len", type=int, default=None, help="window length in tokens (default: model context)"
    )
    p.add_argument(
        "--transpose", type=int, default=6, help="augment with shifts of +-N semitones (default 6)"
    )
    add_precision_option(p)
    p.add_argument(
        "--bpe", type=int, default=None, metavar="VOCAB", help="learn a BPE vocabulary of this size"
    )
    p.add_argument(
        "--eval-every", type=int, default=250, help="validate and save every N steps (default 250)"
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_train)


def _generate(args: argparse.Namespace) -> int:
    from notewave.core.midi import save_score
    from notewave.pipelines.composer import Composer

    composer = Composer.from_pretrained(args.checkpoint)
    score = composer.continue_midi(
        args.prompt,
        bars=args.bars,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        style=args.style,
        constrained=not args.unconstrained,
        prompt_bars=args.prompt_bars,
        progress=True,
    )
    if args.wav is not None:
        from notewave.bridge.render import render_midi, write_wav

        wav, sr = render_midi(score, sample_rate=args.sample_rate, soundfont=args.soundfont)
    save_score(score, args.out)
    print(f"MIDI: {args.out}")
    if args.png is not None:
        from notewave.core.midi import load_score
        from notewave.symbolic.generate import continuation_start, first_bars
        from notewave.symbolic.plot import plot_piano_roll

        prompt = load_score(args.prompt)
        prompt = first_bars(prompt, args.prompt_bars) if args.prompt_bars else prompt
        start = continuation_start(prompt)[1]
        plot_piano_roll(score, args.png, mark_tick=start, title=f"{args.prompt.name} + {args.bars} bars")
        print(f"PNG:  {args.png}")
    if args.wav is not None:
        write_wav(args.wav, wav, sr)
        print(f"WAV:  {args.wav} ({wav.shape[-1] / sr:.1f} s at {sr} Hz)")
    return 0


def add_generate_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``generate``."""
    p = sub.add_parser(
        "generate", help="continue a MIDI prompt", description="Continue a MIDI prompt by N bars."
    )
    p.add_argument("--prompt", required=True, type=Path, help="prompt MIDI file")
    p.add_argument("--bars", type=int, default=8, help="bars to add (default 8)")
    p.add_argument("--prompt-bars", type=int, default=None, help="use only the first N bars of the prompt")
    p.add_argument("--out", required=True, type=Path, help="output MIDI file (prompt + continuation)")
    p.add_argument("--wav", type=Path, default=None, help="also render the result to this WAV file")
    p.add_argument("--png", type=Path, default=None, help="also draw a piano roll to this PNG file")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_SYMBOLIC_CHECKPOINT, help="model folder")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--style", default=None, help="style token, e.g. bach")
    p.add_argument("--unconstrained", action="store_true", help="sample without the REMI grammar mask")
    p.add_argument("--sample-rate", type=int, default=32000, help="WAV sample rate in Hz (default 32000)")
    p.add_argument(
        "--soundfont", type=Path, default=None, help="SoundFont for --wav (default: found automatically)"
    )
    p.set_defaults(func=_generate)


def _eval(args: argparse.Namespace) -> int:
    from notewave.symbolic.evaluate import evaluate_symbolic

    result = evaluate_symbolic(
        args.checkpoint,
        args.data,
        split=args.split,
        samples=args.samples,
        bars=args.bars,
        seed=args.seed,
        style=args.style,
        temperature=args.temperature,
        top_p=args.top_p,
    )
    print(json.dumps(result, indent=2))
    return 0


def add_eval_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``eval symbolic``."""
    p = sub.add_parser("eval", help="evaluate a model")
    eval_sub = p.add_subparsers(dest="eval_command", metavar="MODEL", required=True)
    e = eval_sub.add_parser("symbolic", help="NLL and sample statistics of a MIDI LM on a data split")
    e.add_argument("--checkpoint", type=Path, default=DEFAULT_SYMBOLIC_CHECKPOINT)
    e.add_argument(
        "--data", type=Path, default=None, help="data folder with split subfolders (default data/jsb)"
    )
    e.add_argument("--split", default="test")
    e.add_argument("--samples", type=int, default=10, help="continuations to generate for statistics")
    e.add_argument("--bars", type=int, default=4, help="bars per generated continuation")
    e.add_argument("--style", default=None)
    e.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of the continuations")
    e.add_argument("--top-p", type=float, default=0.95)
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=_eval)

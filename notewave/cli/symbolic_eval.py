"""``notewave eval symbolic``: a composer's NLL and measured edit quality on held-out pieces
(:mod:`notewave.symbolic.evaluate`); ``eval roundtrip`` is registered from :mod:`notewave.cli.bridge`."""

from __future__ import annotations

import argparse
from pathlib import Path

from notewave.cli.bridge import add_eval_roundtrip_cli
from notewave.cli.options import add_range_margin_option, guide_options
from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT


def _eval(args: argparse.Namespace) -> int:
    from notewave.symbolic.evaluate import evaluate_symbolic, write_reports

    edits = (
        []
        if args.edits.strip().lower() == "none"
        else [e.strip() for e in args.edits.split(",") if e.strip()]
    )
    result = evaluate_symbolic(
        args.checkpoint,
        args.data,
        split=args.split,
        pieces=args.pieces,
        prompt_bars=args.prompt_bars,
        bars=args.bars,
        edits=edits,
        seed=args.seed,
        temperature=args.temperature,
        top_p=args.top_p,
        guides=guide_options(args, ("key", "key_balance", "consonance", "density", "lengths")),
    )
    print(result.render(markdown=False), end="")
    write_reports(result, args.json, args.markdown)
    for label, path in (("JSON", args.json), ("Markdown", args.markdown)):
        if path is not None:
            print(f"{label}: {path}")
    print(f"wall time: {result.wall_s:.1f} s")
    return 0


def add_eval_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``eval symbolic`` and ``eval roundtrip`` (in :mod:`notewave.cli.bridge`)."""
    p = sub.add_parser("eval", help="evaluate a model")
    eval_sub = p.add_subparsers(dest="eval_command", metavar="MODEL", required=True)
    e = eval_sub.add_parser(
        "symbolic",
        help="NLL and measured continue/infill/accompany quality of a composer on held-out pieces",
        description="For held-out pieces of every style in the data folders: NLL per token and per note "
        "(and the JSB test split's NLL per note against its target), then continuations, infills and "
        "accompaniments measured against the real music (density, key, entropy, polyphony, drums, "
        "register, consonance). Prints the per-style tables and the targets.",
    )
    e.add_argument("--checkpoint", type=Path, default=DEFAULT_SYMBOLIC_CHECKPOINT, help="composer folder")
    e.add_argument(
        "--data",
        action="append",
        default=None,
        metavar="DIR[:STYLE]",
        help="data folder with valid/ and test/ (repeatable; default: data/jsb:bach and the "
        "notewave data folders present)",
    )
    e.add_argument("--split", default="test", choices=("valid", "test"), help="held-out split (default test)")
    e.add_argument("--pieces", type=int, default=4, help="pieces per style (default 4)")
    e.add_argument("--prompt-bars", type=int, default=8, help="bars of each prompt (default 8)")
    e.add_argument("--bars", type=int, default=4, help="bars each edit writes (default 4)")
    e.add_argument(
        "--edits",
        default="continue,infill,accompany",
        help="comma-separated edits to measure, or none (default continue,infill,accompany)",
    )
    e.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    e.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)")
    e.add_argument("--seed", type=int, default=0, help="sampling seed of the first piece (default 0)")
    e.add_argument("--key", type=float, default=None, help="key guide weight of the edits (default: theirs)")
    e.add_argument(
        "--key-balance", type=float, default=None, help="key guide's balance term of continue and infill"
    )
    e.add_argument(
        "--density", type=float, default=None, help="density guide of continue and infill (default: theirs)"
    )
    e.add_argument(
        "--lengths", type=float, default=None, help="length guide of continue and infill (default: theirs)"
    )
    e.add_argument(
        "--consonance", type=float, default=None, help="consonance guide of accompany (default: its own)"
    )
    add_range_margin_option(e)
    e.add_argument(
        "--json", type=Path, default=None, metavar="OUT.json", help="write the full report as JSON"
    )
    e.add_argument(
        "--markdown", type=Path, default=None, metavar="OUT.md", help="write the tables as Markdown"
    )
    e.set_defaults(func=_eval)
    add_eval_roundtrip_cli(eval_sub)

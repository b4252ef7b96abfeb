"""CLI command ``checkpoint average``: the weighted mean of checkpoints of one network (a model soup,
:mod:`notewave.core.average`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from notewave.errors import ConfigError


def _canonical_config(config: dict) -> dict:
    """A transcriber's ``config.json`` with the defaults of fields its checkpoint predates filled in
    (``harmonic_channels``), so that it averages with newer checkpoints of the same network; other
    kinds as stored."""
    from notewave.bridge.transcription.model import MODEL_KIND, TranscriberConfig

    if config.get("kind") == MODEL_KIND:
        return {**config, **TranscriberConfig.from_dict(config).to_dict()}
    return config


def _average(args: argparse.Namespace) -> int:
    from notewave.core.average import average_checkpoints

    weights = None
    if args.weights is not None:
        try:
            weights = [float(x) for x in args.weights.split(",")]
        except ValueError:
            raise ConfigError(
                f"--weights must be numbers W,W,... (one per checkpoint), got {args.weights!r}"
            ) from None
    out = average_checkpoints(args.checkpoints, args.out, weights, canonical=_canonical_config)
    print(f"averaged {len(args.checkpoints)} checkpoints -> {out}")
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``notewave checkpoint average OUT CKPT CKPT... [--weights W,W,...]``."""
    group = sub.add_parser("checkpoint", help="work on checkpoint folders (average)")
    group_sub = group.add_subparsers(dest="checkpoint_command", metavar="ACTION", required=True)
    p = group_sub.add_parser(
        "average",
        help="weighted mean of checkpoints fine-tuned from one initialisation (a model soup)",
        description="Average the float weights of checkpoints of one architecture (same config.json apart"
        " from training) into a new checkpoint folder, written atomically (Wortsman et al. 2022).",
    )
    p.add_argument("out", type=Path, help="new checkpoint folder")
    p.add_argument("checkpoints", type=Path, nargs="+", metavar="CKPT", help="two or more checkpoint folders")
    p.add_argument(
        "--weights", default=None, metavar="W,W,...", help="one weight per checkpoint (default uniform)"
    )
    p.set_defaults(func=_average)

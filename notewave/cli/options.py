"""Options shared by several commands."""

from __future__ import annotations

import argparse

from notewave.core.precision import PRECISIONS


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """``--precision auto|fp32|bf16`` (default auto) and ``--bf16`` (= ``--precision bf16``)."""
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (default): bf16 autocast only where the device computes bf16 natively, else fp32; "
        "bf16 where not native falls back to fp32 with a warning",
    )
    parser.add_argument(
        "--bf16", dest="precision", action="store_const", const="bf16", help="the same as --precision bf16"
    )


def range_margin(text: str) -> int | None:
    """``--range-margin``: semitones (an int; a negative one is refused by the composer), or ``off``
    (None)."""
    if text.strip().lower() == "off":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected semitones >= 0 or 'off', got {text!r}") from None


def add_range_margin_option(parser: argparse.ArgumentParser) -> None:
    """``--range-margin N|off`` of continue and infill; absent from the namespace when not given
    (the composer's default then applies)."""
    parser.add_argument(
        "--range-margin",
        type=range_margin,
        default=argparse.SUPPRESS,
        metavar="N|off",
        help="semitones a track's new notes may go past the lowest and highest pitch it plays in "
        "the given music (default 7; off: the format's whole range)",
    )


def guide_options(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    """The guide weights ``names`` the user gave (options left at ``None`` are not passed, so the
    composer's defaults apply) and ``range_margin`` when ``--range-margin`` was given."""
    out = {k: v for k in names if (v := getattr(args, k, None)) is not None}
    return out | ({"range_margin": args.range_margin} if hasattr(args, "range_margin") else {})

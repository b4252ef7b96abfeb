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

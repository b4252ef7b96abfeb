"""``notewave <command>``: a thin command-line layer over the Python API.

Each command module registers its subcommand with ``add_cli(subparsers)``; errors that
notewave raises on purpose (:class:`~notewave.errors.NotewaveError`) are printed as one
line and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from notewave import __version__
from notewave.errors import NotewaveError


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser of the ``notewave`` command."""
    from notewave.audio import codec_cli, codec_train, lm_train
    from notewave.audio.generate import add_generate_cli as add_generate_audio_cli
    from notewave.bridge import transcribe
    from notewave.bridge.render import add_cli as add_render_cli
    from notewave.commands import symbolic as symbolic_commands
    from notewave.symbolic import datasets

    parser = argparse.ArgumentParser(prog="notewave", description="Symbolic + audio music generation.")
    parser.add_argument("--version", action="version", version=f"notewave {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    datasets.add_cli(sub)
    train = sub.add_parser("train", help="train a model (symbolic, codec, audio-lm, transcriber)")
    train_sub = train.add_subparsers(dest="train_command", metavar="MODEL", required=True)
    symbolic_commands.add_train_cli(train_sub)
    codec_train.add_cli(train_sub)
    lm_train.add_cli(train_sub)
    transcribe.add_cli(train_sub)
    symbolic_commands.add_generate_cli(sub)
    symbolic_commands.add_eval_cli(sub)
    add_render_cli(sub)
    transcribe.add_transcribe_cli(sub)
    codec_cli.add_codec_cli(sub)
    add_generate_audio_cli(sub)
    return parser


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Warnings of the library (e.g. a melody trimmed to the requested length) as one line each."""
    print(f"notewave: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``notewave`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # restored on exit
            return int(args.func(args) or 0)
    except NotewaveError as exc:
        print(f"notewave: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("notewave: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``notewave <command>``: a thin command-line layer over the Python API.

The only package that imports argparse: one module per command group (``data``, ``symbolic``,
``bridge``, ``audio``, ``codec``, ``hybrid``, ``checkpoint``), each registering its subcommands on
the parser; errors that notewave raises on purpose (:class:`~notewave.errors.NotewaveError`) are
printed as one line and exit with status 2, never as a traceback.
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
    from notewave.cli import audio, bridge, checkpoint, codec, data, hybrid, symbolic, symbolic_eval

    parser = argparse.ArgumentParser(prog="notewave", description="Symbolic + audio music generation.")
    parser.add_argument("--version", action="version", version=f"notewave {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data.add_cli(sub)
    train = sub.add_parser("train", help="train a model (symbolic, codec, audio-lm, transcriber)")
    train_sub = train.add_subparsers(dest="train_command", metavar="MODEL", required=True)
    symbolic.add_train_cli(train_sub)
    audio.add_train_codec_cli(train_sub)
    audio.add_train_audio_lm_cli(train_sub)
    bridge.add_train_transcriber_cli(train_sub)
    symbolic.add_generate_cli(sub)
    symbolic_eval.add_eval_cli(sub)
    bridge.add_render_cli(sub)
    bridge.add_transcribe_cli(sub)
    codec.add_codec_cli(sub)
    audio.add_generate_audio_cli(sub)
    hybrid.add_cli(sub)
    checkpoint.add_cli(sub)
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

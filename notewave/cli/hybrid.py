"""CLI commands of the hybrid pipelines: ``compose`` (sketch -> MIDI -> audio) and ``continue-audio``
(recording -> notes -> continuation -> audio); see :mod:`notewave.pipelines.hybrid`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from notewave.paths import DEFAULT_AUDIO_CHECKPOINT, DEFAULT_SYMBOLIC_CHECKPOINT
from notewave.pipelines.hybrid_models import AUDIO_CHOICES


def _common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--style", default=None, help="composer style token, e.g. bach, game-rock (model card)")
    p.add_argument(
        "--audio", default="both", choices=AUDIO_CHOICES, help="which audio to make (default both)"
    )
    p.add_argument("--text", default=None, help='text for the audio LM, e.g. "Bach chorale, church organ"')
    p.add_argument(
        "--cfg-coef", type=float, default=3.0, help="classifier-free guidance (default 3; 1 = off)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the composer and the audio LM (default 0)")
    p.add_argument(
        "--checkpoint", type=Path, default=DEFAULT_SYMBOLIC_CHECKPOINT, help="composer (MIDI LM) folder"
    )
    p.add_argument("--audio-checkpoint", type=Path, default=DEFAULT_AUDIO_CHECKPOINT, help="audio LM folder")
    p.add_argument("--out", required=True, type=Path, help="output folder (created when missing)")


def _print(result: Any) -> int:
    """One line per written file, then the headline figures of the report."""
    for key, path in result.paths.items():
        print(f"{key:15s} {path}")
    report = result.report
    cosine = report.get("melody_chroma_cosine") or {}
    lm, fluid = cosine.get("audio_lm"), cosine.get("fluidsynth_reference")
    print(
        f"bars {report['bars']['total']} ({report['bars']['new']} new), notes {report['notes']['total']}, "
        f"melody chroma cosine: audio LM {lm}, FluidSynth {fluid}"
    )
    return 0


def _compose(args: argparse.Namespace) -> int:
    from notewave.pipelines.hybrid import compose

    result = compose(
        args.sketch, args.bars, infill=args.infill, tracks=args.tracks, prompt_bars=args.prompt_bars,
        style=args.style, audio=args.audio, text=args.text, seconds=args.seconds, cfg_coef=args.cfg_coef,
        seed=args.seed, checkpoint=args.checkpoint, audio_checkpoint=args.audio_checkpoint, out_dir=args.out,
    )  # fmt: skip
    return _print(result)


def _continue_audio(args: argparse.Namespace) -> int:
    from notewave.pipelines.hybrid import continue_audio

    result = continue_audio(
        args.recording, args.bars, seconds=args.seconds, style=args.style, audio=args.audio,
        text=args.text, mono=args.mono, crossfade=args.crossfade, cfg_coef=args.cfg_coef, seed=args.seed,
        checkpoint=args.checkpoint, audio_checkpoint=args.audio_checkpoint, out_dir=args.out,
    )  # fmt: skip
    return _print(result)


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``compose`` and ``continue-audio``."""
    p = sub.add_parser(
        "compose",
        help="sketch -> MIDI -> audio: continue or infill a sketch, render it, play it with the audio LM",
        description="Continue a MIDI sketch by N bars (or regenerate bars A-B with --infill) with the "
        "composer, render the result with FluidSynth, and generate audio with the audio LM conditioned on "
        "the melody chroma of the notes (classifier-free guidance). Writes composition.mid, the WAVs, "
        "piano_roll.png, spectrogram.png and report.json into --out.",
    )
    p.add_argument("sketch", type=Path, help="MIDI sketch")
    p.add_argument(
        "--bars", type=int, default=None, help="bars to continue by (default 4; not with --infill)"
    )
    p.add_argument("--infill", default=None, metavar="A-B", help="regenerate bars A-B instead, e.g. 9-12")
    p.add_argument("--tracks", default=None, help='with --infill: tracks to regenerate, e.g. "Bass,Drums"')
    p.add_argument("--prompt-bars", type=int, default=None, help="use only the first N bars of the sketch")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="audio LM length from the start of the new bars (default: exactly the new bars)",
    )
    _common_options(p)
    p.set_defaults(func=_compose)

    c = sub.add_parser(
        "continue-audio",
        help="recording -> notes -> continuation -> audio, and the audio LM continuing the recording",
        description="Transcribe a recording, continue its notes by N bars with the composer and render "
        "them with FluidSynth; let the audio LM continue the recording itself (its codes as the prompt, the "
        "continuation's chroma as the melody). Each continuation follows the original recording with an "
        "equal-power crossfade. Writes transcription.mid, continuation.mid, the WAVs, the PNGs and "
        "report.json into --out.",
    )
    c.add_argument("recording", type=Path, help="audio file (WAV, FLAC, OGG, ...), at least 1 s")
    c.add_argument("--bars", type=int, default=4, help="bars the composer adds (default 4)")
    c.add_argument(
        "--seconds", type=float, default=4.0, help="seconds the audio LM adds (default 4; slow on a CPU)"
    )
    c.add_argument("--mono", action="store_true", help="transcribe one voice with pYIN (hummed, sung)")
    c.add_argument("--crossfade", type=float, default=0.05, help="seam crossfade in seconds (default 0.05)")
    _common_options(c)
    c.set_defaults(func=_continue_audio)

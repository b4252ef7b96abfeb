"""Melody adherence of the audio LM: chroma cosine similarity between generated audio and its melody.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/melody_adherence.py [--pieces 20] [--seconds 5]
[--checkpoint data/checkpoints/audio]``

For each of the first N held-out JSB test chorales (``data/jsb/test``; the audio LM never saw
the test split), the melody condition is the per-frame argmax chroma of the MIDI's first
``--seconds`` seconds (:func:`~notewave.bridge.chroma.chroma_from_midi`, summed velocities, at the
codec frame rate). Audio is generated with that melody and without it, each with classifier-free
guidance 1 (off) and 3; the same text ("Bach chorale, church organ") and style (``bach``, when
the model knows it) are given in every row, so only the melody differs. The argmax chroma of the
generated audio (:func:`~notewave.bridge.chroma.chroma_from_audio`) is compared frame by frame
with the melody condition by cosine similarity (:func:`~notewave.bridge.chroma.chroma_similarity`,
silent frames skipped), as in MusicGen's melody evaluation (Copet et al. 2023, Table 2, which
reports 0.44 for MusicGen-melody; unconditioned audio scores about 0.1 against a one-hot chroma).
As ceilings, the FluidSynth render of the same excerpt is scored too (``render``), and that render
encoded and decoded by the codec (``render through the codec``: the best the LM can do with codes).

A second measure without chroma (:mod:`notewave.audio.lm.adherence`): every audio of the table is
transcribed by the shipped transcriber and its notes, folded into one octave (pitch classes), are
scored against the chorale's own notes of the excerpt: note onset F1 (mir_eval, offsets ignored)
within 50 ms and within 100 ms (the LM is not sample-exact), and frame-level (100 Hz) pitch-class
precision and recall. The ``no melody`` rows are the chance level of the same text and style.

Prints a table: mean, standard deviation, min and max of the per-piece means; the transcription
table (means over pieces); then, since the codec
may lose pitch (see the ``render through the codec`` row), a second table that does not depend on
it: the LM's NLL of the render's codes given the piece's own melody, another piece's melody, or no
melody (a model that uses the melody gives its own melody the lowest NLL).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from notewave.audio.lm.adherence import ONSET_TOLERANCES, PitchClassScores, transcription_adherence
from notewave.audio.lm.conditioning import build_conditions
from notewave.audio.lm.model import AudioLM
from notewave.audio.lm.text import embed_text
from notewave.bridge.chroma import chroma_from_audio, chroma_from_midi, chroma_similarity
from notewave.paths import DEFAULT_AUDIO_CHECKPOINT, JSB_MIDI_DIR
from notewave.pipelines.sound import SoundGenerator

TEXT = "Bach chorale, church organ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(DEFAULT_AUDIO_CHECKPOINT))
    parser.add_argument("--pieces", type=int, default=20, help="held-out chorales (default 20)")
    parser.add_argument("--seconds", type=float, default=5.0, help="excerpt length in seconds (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-render", action="store_true", help="skip the FluidSynth reference row")
    parser.add_argument(
        "--split", default="test", choices=("test", "valid"),
        help="JSB split (default test; valid is for choosing between checkpoints without the test split)",
    )  # fmt: skip
    args = parser.parse_args()

    sound = SoundGenerator.from_pretrained(args.checkpoint)
    model = sound.lm
    rate, fps = model.sample_rate, model.frame_rate
    style = "bach" if "bach" in model.config.conditions.styles else None
    text = TEXT if model.config.conditions.text else None
    files = sorted((JSB_MIDI_DIR / args.split).glob("*.mid"))[: args.pieces]
    if not files:
        parser.error(f"no MIDI files in {JSB_MIDI_DIR / args.split}; run `notewave data jsb` first")
    rows = {
        "melody, cfg 3": (True, 3.0),
        "melody, cfg 1": (True, 1.0),
        "no melody, cfg 3": (False, 3.0),
        "no melody, cfg 1": (False, 1.0),
    }
    scores: dict[str, list[float]] = {name: [] for name in rows}
    if not args.no_render:
        scores["render (reference)"] = []
        scores["render through the codec"] = []
    notes: dict[str, list[dict[float, PitchClassScores]]] = {name: [] for name in scores}
    pieces: list[tuple[torch.Tensor, np.ndarray]] = []  # render codes and melody, for the NLL table
    start = time.perf_counter()
    for i, path in enumerate(files):
        melody = chroma_from_midi(path, frame_rate=fps, mode="velocity", duration=args.seconds, argmax=True)
        for name, (use_melody, cfg) in rows.items():
            wav, _ = sound.generate(
                melody=melody if use_melody else None, text=text, style=style, seconds=args.seconds,
                cfg_coef=cfg, seed=args.seed + i, progress=False,
            )  # fmt: skip
            scores[name].append(chroma_similarity(chroma_from_audio(wav, rate, fps, argmax=True), melody)[0])
            notes[name].append(transcription_adherence(wav, rate, path, args.seconds))
        if not args.no_render:
            from notewave.bridge.render import render_midi

            ref, _ = render_midi(path, sample_rate=rate, normalize="loudness")
            ref = ref[:, : int(args.seconds * rate)]
            scores["render (reference)"].append(
                chroma_similarity(chroma_from_audio(ref, rate, fps, argmax=True), melody)[0]
            )
            notes["render (reference)"].append(transcription_adherence(ref, rate, path, args.seconds))
            codes = sound.codec.encode(torch.from_numpy(ref)[None], n_q=model.num_codebooks)  # the LM's K
            pieces.append((codes[:, :, : model.max_frames], melody))
            resynth = sound.codec.decode(codes)[0].numpy()
            scores["render through the codec"].append(
                chroma_similarity(chroma_from_audio(resynth, rate, fps, argmax=True), melody)[0]
            )
            notes["render through the codec"].append(
                transcription_adherence(resynth, rate, path, args.seconds)
            )
        print(
            f"{i + 1}/{len(files)} {path.name}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in scores.items())
        )
    elapsed = time.perf_counter() - start
    where = f"{len(files)} JSB {args.split} chorales"
    print(f"\ncheckpoint {args.checkpoint}; {where}, first {args.seconds:g} s each; ")
    print(f"text={text!r}, style={style!r}, seed {args.seed}+i; {elapsed:.0f} s in all\n")
    print("| condition | mean chroma cosine | std | min | max |")
    print("| --- | --- | --- | --- | --- |")
    for name, values in scores.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            v = np.array(values, dtype=np.float64)
            v = v[np.isfinite(v)]
        print(f"| {name} | {v.mean():.3f} | {v.std():.3f} | {v.min():.3f} | {v.max():.3f} |")
    print_transcription_table(notes)
    if len(pieces) > 1:
        print_nll_table(model, pieces, text, style)


def print_transcription_table(notes: dict[str, list[dict[float, PitchClassScores]]]) -> None:
    """Means over pieces of the pitch-class scores of the transcribed audio (module docstring)."""
    strict, loose = ONSET_TOLERANCES
    print("\nTranscribed audio against the chorale's own notes, pitch classes (means over pieces):\n")
    print(
        f"| condition | onset F1 ({strict * 1000:.0f} ms) | onset F1 ({loose * 1000:.0f} ms) | "
        "frame pitch-class precision | frame recall | notes per piece (transcribed / reference) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, items in notes.items():
        if not items:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN rows (no reference note) are left out
            mean = {
                (tol, key): float(np.nanmean([getattr(item[tol], key) for item in items]))
                for tol in (strict, loose)
                for key in (
                    "onset_f1",
                    "frame_precision",
                    "frame_recall",
                    "estimated_notes",
                    "reference_notes",
                )
            }
        counts = f"{mean[strict, 'estimated_notes']:.1f} / {mean[strict, 'reference_notes']:.1f}"
        print(
            f"| {name} | {mean[strict, 'onset_f1']:.3f} | {mean[loose, 'onset_f1']:.3f} | "
            f"{mean[strict, 'frame_precision']:.3f} | {mean[strict, 'frame_recall']:.3f} | {counts} |"
        )


@torch.no_grad()
def print_nll_table(
    model: AudioLM, pieces: list[tuple[torch.Tensor, np.ndarray]], text: str | None, style: str | None
) -> None:
    """NLL (nats per code) of each render's codes given its own melody, the next piece's, or none.

    This measures the use of the melody independently of what the codec can reproduce.
    """
    totals = {"own melody": [], "another piece's melody": [], "no melody": []}
    for i, (codes, melody) in enumerate(pieces):
        other = pieces[(i + 1) % len(pieces)][1]
        frames = codes.shape[2]
        for name, chroma in (("own melody", melody), ("another piece's melody", other), ("no melody", None)):
            cond = build_conditions(
                model.config.conditions, frames, None if chroma is None else chroma[:, :frames]
            )
            if style is not None:
                cond.style[0] = model.config.conditions.style_index(style)
            if text is not None:
                cond.text[0], cond.has_text[0] = embed_text([text])[0], True
            totals[name].append(float(model.loss(codes, cond)[0]))
    print(
        f"\nNLL of the {len(pieces)} renders' codes (first {pieces[0][0].shape[2]} frames), nats per code:\n"
    )
    print(
        "| melody condition | mean NLL | mean difference to own melody | pieces where own melody is lower |"
    )
    print("| --- | --- | --- | --- |")
    own = np.array(totals["own melody"])
    for name, values in totals.items():
        v = np.array(values)
        wins = "" if name == "own melody" else f"{int((own < v).sum())}/{len(v)}"
        print(f"| {name} | {v.mean():.4f} | {np.mean(v - own):+.4f} | {wins} |")


if __name__ == "__main__":
    main()

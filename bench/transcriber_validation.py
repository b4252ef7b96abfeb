"""Choose between transcriber checkpoints on validation pieces, never on the test pieces of
``bench/roundtrip.py``: the first ``--pieces`` files of the ``valid/`` splits of ``data/jsb``,
``data/freedoom`` and ``data/mma`` (the ones present), the first ``--seconds`` of each with their own
programs and drums, rendered by the two engines no transcriber trains on: FluidSynth with the held-out
SoundFont (``--holdout-soundfont``, default MuseScore General Lite) and TiMidity++ with Freepats.

Every piece is rendered once (``--cache FILE.npz`` keeps the renders for later runs) and transcribed by
each checkpoint; the table gives mean onset F1 (``mir_eval``, 50 ms, onsets only) per engine and per
folder. The first checkpoint is the reference; the decision rule the transcriber's model card uses is
printed against it: the mean of both engines up by >= 0.01 and neither engine down by more than 0.01.
``--false-notes`` also sorts each checkpoint's false notes (mir_eval's one-to-one matching) by what
sounds at their onset: a true note an octave above or below, a true note at another pitch (with the commonest
intervals), or none; and counts those within 50 ms of a drum hit.

Usage: ``OMP_NUM_THREADS=1 python bench/transcriber_validation.py [CKPT ...] [--pieces 8] [--seconds 20]
[--cache runs/val_audio.npz] [--false-notes] [--json OUT]`` (default checkpoint: the shipped one; about
1 min per checkpoint on one thread after the renders).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from notewave.bridge.roundtrip import (  # noqa: E402
    excerpt,
    heldout_pieces,
    note_rows,
    render_excerpt,
    score_notes,
)
from notewave.bridge.timidity import DEFAULT_CONFIG  # noqa: E402
from notewave.bridge.transcription.augment import HOLDOUT_SOUNDFONT, installed_soundfonts, is_soundfont  # noqa: E402
from notewave.core.io import atomic_open  # noqa: E402
from notewave.paths import DATA_DIR, DEFAULT_TRANSCRIBER_CHECKPOINT  # noqa: E402

FOLDERS = ("jsb", "freedoom", "mma")
RULE_GAIN, RULE_LOSS = 0.01, 0.01


def renders(references: dict, engines: dict, cache: Path | None) -> dict:
    """``{(folder, piece name, engine): float32 [samples]}`` at 22.05 kHz of the excerpts ``references``
    (``{(folder, piece name): Score}``), from ``cache`` when it holds every one, else rendered (and
    written to ``cache`` atomically)."""
    keys = [(*piece, e) for piece in references for e in engines]
    if cache is not None and cache.exists():
        with np.load(cache) as stored:
            if all("|".join(k) in stored for k in keys):
                return {k: stored["|".join(k)] for k in keys}
    out = {}
    for (folder, piece), reference in references.items():
        for engine, (name, font) in engines.items():
            out[(folder, piece, engine)] = render_excerpt(reference, name, font)[0][0]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(cache, "wb") as handle:
            np.savez(handle, **{"|".join(k): v for k, v in out.items()})
    return out


def false_notes(reference, estimate, tally: dict) -> None:
    """Add the false notes of ``estimate`` (symusic Scores; mir_eval matching, 50 ms onsets) to ``tally``:
    their count, those within 50 ms of a drum hit, and by what sounds at their onset: a reference note an
    octave above (the false note is an "octave below"; with true notes an octave above and below, it
    counts there) or below, a reference note at another pitch (``intervals``: estimate minus the
    nearest reference pitch), or no reference note."""
    import mir_eval

    ref, est = note_rows(reference), note_rows(estimate)
    drums = np.array(sorted(n.time for t in reference.tracks if t.is_drum for n in t.notes))
    hz = mir_eval.util.midi_to_hz
    pairs = (
        mir_eval.transcription.match_notes(
            ref[:, :2], hz(ref[:, 2]), est[:, :2], hz(est[:, 2]), onset_tolerance=0.05, offset_ratio=None
        )
        if len(ref) and len(est)
        else []
    )
    for j in sorted(set(range(len(est))) - {k for _, k in pairs}):
        onset, pitch = est[j, 0], est[j, 2]
        tally["false"] = tally.get("false", 0) + 1
        tally["near drum"] = tally.get("near drum", 0) + int(
            len(drums) > 0 and np.abs(drums - onset).min() <= 0.05
        )
        near = ref[np.abs(ref[:, 0] - onset) <= 0.05, 2] if len(ref) else np.zeros(0)
        kind = (
            "no true onset"
            if not len(near)
            else "octave below"
            if np.any(near - pitch == 12)
            else "octave above"
            if np.any(pitch - near == 12)
            else "other pitch"
        )
        tally[kind] = tally.get(kind, 0) + 1
        if kind == "other pitch":
            step = int(pitch - near[np.argmin(np.abs(near - pitch))])
            tally.setdefault("intervals", {})[step] = tally.get("intervals", {}).get(step, 0) + 1


def evaluate(ckpt: Path, references: dict, audio: dict, errors: dict | None = None) -> dict:
    """Mean onset F1 of ``ckpt`` per engine (``"mean"``) and per engine and folder; with ``errors`` (a dict)
    also its false notes per ``(engine, folder)`` (:func:`false_notes`)."""
    from notewave.bridge.transcription.transcribe import transcribe

    scores: dict = {}
    for (folder, name, engine), wav in audio.items():
        reference = references[(folder, name)]
        estimate = transcribe(wav[None], 22050, checkpoint=ckpt)
        scores.setdefault(engine, {}).setdefault(folder, []).append(score_notes(reference, estimate).f1)
        if errors is not None:
            false_notes(reference, estimate.to("second"), errors.setdefault((engine, folder), {}))
    return {
        engine: {
            "mean": float(np.mean(sum(by.values(), []))),
            **{f: float(np.mean(v)) for f, v in by.items()},
        }
        for engine, by in scores.items()
    }


def print_false_notes(errors: dict[str, dict]) -> None:
    """One row per checkpoint, engine and folder: the false notes by kind and the commonest intervals."""
    kinds = ("false", "octave below", "octave above", "other pitch", "no true onset", "near drum")
    print(
        f"\n| checkpoint | engine | folder | {' | '.join(kinds)} | commonest other intervals (semitones: n) |"
    )
    print("|---|---|---|" + "---|" * (len(kinds) + 1))
    for name, by in errors.items():
        for (engine, folder), tally in by.items():
            top = sorted(tally.get("intervals", {}).items(), key=lambda kv: -kv[1])[:6]
            cells = " | ".join(str(tally.get(k, 0)) for k in kinds)
            print(f"| {name} | {engine} | {folder} | {cells} | {', '.join(f'{i:+d}: {n}' for i, n in top)} |")


def verdict(row: dict, reference: dict) -> str:
    """The model card's rule against the reference checkpoint."""
    deltas = [row[e]["mean"] - reference[e]["mean"] for e in reference]
    if np.mean(deltas) >= RULE_GAIN and min(deltas) >= -RULE_LOSS:
        return "passes"
    return f"no (mean {np.mean(deltas):+.3f}, worst engine {min(deltas):+.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path, help="transcriber folders (first: reference)")
    parser.add_argument("--pieces", type=int, default=8, help="validation files per folder (default 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of each (default 20)")
    parser.add_argument(
        "--holdout-soundfont", default=HOLDOUT_SOUNDFONT, help="SoundFont held out of training"
    )
    parser.add_argument("--cache", type=Path, default=None, help="keep the renders in this .npz")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument(
        "--false-notes", action="store_true", help="also sort each checkpoint's false notes by kind"
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    checkpoints = args.checkpoints or [DEFAULT_TRANSCRIBER_CHECKPOINT]
    folders = [DATA_DIR / f / "valid" for f in FOLDERS if (DATA_DIR / f / "valid").is_dir()]
    if not folders:
        parser.error("no data/{jsb,freedoom,mma}/valid folder: run `notewave data jsb|freedoom|mma` first")
    pieces = {f.parent.name: heldout_pieces([f], args.pieces) for f in folders}
    held = [p for p in installed_soundfonts() if is_soundfont(p, args.holdout_soundfont)]
    if not held:
        parser.error(f"the held-out SoundFont {args.holdout_soundfont} is not installed")
    engines = {
        f"FluidSynth {held[0].stem}": ("fluidsynth", held[0]),
        "TiMidity Freepats": ("timidity", DEFAULT_CONFIG),
    }
    references = {(f, p.name): excerpt(p, args.seconds) for f, files in pieces.items() for p in files}
    audio = renders(references, engines, args.cache)
    errors: dict[str, dict] = {str(c): {} for c in checkpoints}
    rows = {
        str(c): evaluate(c, references, audio, errors[str(c)] if args.false_notes else None)
        for c in checkpoints
    }
    reference = rows[str(checkpoints[0])]
    names = list(engines)
    print(f"\n{', '.join(f'{len(v)} {k}' for k, v in pieces.items())} validation pieces x {args.seconds:g} s")
    head = " | ".join(names) + " | " + " | ".join(f"{n}: {' / '.join(pieces)}" for n in names)
    print(f"\n| checkpoint | {head} | rule vs the first |\n|---|" + "---|" * (2 * len(names) + 1))
    for name, row in rows.items():
        means = " | ".join(f"{row[e]['mean']:.3f}" for e in names)
        per = " | ".join(" / ".join(f"{row[e][f]:.3f}" for f in pieces) for e in names)
        rule = "reference" if row is reference else verdict(row, reference)
        print(f"| {name} | {means} | {per} | {rule} |")
    if args.false_notes:
        print_false_notes(errors)
    if args.json:
        with atomic_open(args.json) as handle:
            json.dump(
                {"pieces": {k: [p.name for p in v] for k, v in pieces.items()}, "results": rows},
                handle,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

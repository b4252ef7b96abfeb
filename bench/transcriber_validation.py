"""Choose between transcriber checkpoints on validation pieces, never on the test pieces of
``bench/roundtrip.py``: the first ``--pieces`` files of the ``valid/`` splits of ``data/jsb``,
``data/freedoom`` and ``data/mma`` (the ones present), the first ``--seconds`` of each with their own
programs and drums, rendered by the two engines no transcriber trains on: FluidSynth with the held-out
SoundFont (``--holdout-soundfont``, default MuseScore General Lite) and TiMidity++ with Freepats.

Every piece is rendered once (``--cache FILE.npz`` keeps the renders for later runs) and transcribed by
each checkpoint; the table gives mean onset F1 (``mir_eval``, 50 ms, onsets only) per engine and per
folder. The first checkpoint is the reference; the decision rule the transcriber's model card uses is
printed against it: the mean of both engines up by >= 0.01 and neither engine down by more than 0.01.

Usage: ``OMP_NUM_THREADS=1 python bench/transcriber_validation.py [CKPT ...] [--pieces 8] [--seconds 20]
[--cache runs/val_audio.npz] [--json OUT]`` (default checkpoint: the shipped one; about 1 min per
checkpoint on one thread after the renders).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from notewave.bridge.roundtrip import excerpt, heldout_pieces, render_excerpt, score_notes  # noqa: E402
from notewave.bridge.timidity import DEFAULT_CONFIG  # noqa: E402
from notewave.bridge.transcription.augment import HOLDOUT_SOUNDFONT, installed_soundfonts, is_soundfont  # noqa: E402
from notewave.core.io import atomic_open  # noqa: E402
from notewave.paths import DATA_DIR, DEFAULT_TRANSCRIBER_CHECKPOINT  # noqa: E402

FOLDERS = ("jsb", "freedoom", "mma")
RULE_GAIN, RULE_LOSS = 0.01, 0.01


def renders(pieces: dict[str, list[Path]], seconds: float, engines: dict, cache: Path | None) -> dict:
    """``{(folder, piece name, engine): float32 [samples]}`` at 22.05 kHz, from ``cache`` when it holds
    every one, else rendered (and written to ``cache`` atomically)."""
    keys = [(f, p.name, e) for f, files in pieces.items() for p in files for e in engines]
    if cache is not None and cache.exists():
        with np.load(cache) as stored:
            if all("|".join(k) in stored for k in keys):
                return {k: stored["|".join(k)] for k in keys}
    out = {}
    for folder, files in pieces.items():
        for path in files:
            reference = excerpt(path, seconds)
            for engine, (name, font) in engines.items():
                out[(folder, path.name, engine)] = render_excerpt(reference, name, font)[0][0]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(cache, "wb") as handle:
            np.savez(handle, **{"|".join(k): v for k, v in out.items()})
    return out


def evaluate(ckpt: Path, pieces: dict, audio: dict, engines: dict, seconds: float) -> dict:
    """Mean onset F1 of ``ckpt`` per engine (``"mean"``) and per engine and folder."""
    from notewave.bridge.transcription.transcribe import transcribe

    scores: dict = {}
    for (folder, name, engine), wav in audio.items():
        path = next(p for p in pieces[folder] if p.name == name)
        f1 = score_notes(excerpt(path, seconds), transcribe(wav[None], 22050, checkpoint=ckpt)).f1
        scores.setdefault(engine, {}).setdefault(folder, []).append(f1)
    return {
        engine: {
            "mean": float(np.mean(sum(by.values(), []))),
            **{f: float(np.mean(v)) for f, v in by.items()},
        }
        for engine, by in scores.items()
    }


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
    audio = renders(pieces, args.seconds, engines, args.cache)
    rows = {str(c): evaluate(c, pieces, audio, engines, args.seconds) for c in checkpoints}
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

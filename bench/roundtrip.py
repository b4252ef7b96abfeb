"""Round-trip benchmark: MIDI -> FluidSynth render -> transcription -> note F1 against the MIDI.

Pieces: the held-out JSB test chorales (``data/jsb/test``; the shipped transcriber never trained
on them), the first ``--seconds`` of each (notes starting before that time, kept whole).
Timbres: every voice set to one General MIDI program per condition, rendered with each installed
SoundFont (TimGM6mb, FluidR3_GM) at 22.05 kHz mono. Program families:

* organ (19, church organ, the chorales' own program) and piano (0): families the model trained
  on, with unseen pieces;
* string ensemble (48) and choir aahs (52): the GM "ensemble" family (48-55), held out of training
  unless the checkpoint's training record says it trained with ``--ensemble`` (session 11 on).

The excerpt, render, transcription and scoring are those of ``notewave eval roundtrip``
(:mod:`notewave.bridge.roundtrip`). Metrics: ``mir_eval.transcription.precision_recall_f1_overlap``
with a 50 ms onset tolerance, onset-only (``offset_ratio=None``) and with offsets (within 20 % of
the note or 50 ms), F1 averaged over pieces; speed as x real time (audio seconds / transcription
wall seconds, resampling included; basic-pitch also loads the WAV file) on one CPU thread.
basic-pitch (Bittner et al. 2022, ICASSP; ONNX model, default thresholds) runs side by side when
importable, else its columns are n/a.

Also measured: FluidSynth render speed of whole chorales at 32 kHz, our in-process renderer
(pyfluidsynth, ``notewave.bridge.render.render_midi``) against the ``fluidsynth`` command line
(``fluidsynth -ni -F out.wav -r 32000 SF2 IN.mid``; includes process start and SoundFont loading).

With ``--midi DIR`` (repeatable) the pieces are instead the held-out files of each folder, ones
``notewave train transcriber`` never trains on (its ``test/`` split, or every 20th file by sorted
path of a flat folder, see :func:`notewave.bridge.roundtrip.heldout_pieces`), the first
``--pieces`` of each:
e.g. ``--midi data/m21/palestrina --midi data/m21/trecento`` (each written by ``notewave data
music21 --collections NAME --out data/m21/NAME``) measures music other than chorales (more voices,
wider ranges, other rhythms).

Generalization table (first): held-out pieces with their own programs, rendered by engines and
instruments no transcriber trains on, ours and basic-pitch side by side: FluidSynth with the SoundFont
that ``notewave train transcriber`` holds out (``--holdout-soundfont``, default MuseScore General), and
TiMidity++ with the Freepats patches (``notewave.bridge.timidity``). Piece sets: the JSB test chorales
and the test splits of the multi-instrument folders (``--multi DIR``, repeatable; default
``data/freedoom`` and ``data/mma`` when present), whose drum tracks are rendered but are no reference
notes. ``--generalization-only`` skips the per-program and render-speed tables.

Usage: ``python bench/roundtrip.py [--pieces 4] [--seconds 20] [--checkpoint DIR] [--midi DIR ...]
[--multi DIR ...] [--holdout-soundfont SF] [--generalization-only] [--json OUT]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from notewave.bridge.render import render_midi, write_wav  # noqa: E402
from notewave.bridge.roundtrip import heldout_pieces, roundtrip_piece, score_notes  # noqa: E402
from notewave.bridge.soundfont import list_soundfonts  # noqa: E402
from notewave.bridge.timidity import DEFAULT_CONFIG, timidity_binary  # noqa: E402
from notewave.bridge.transcription.augment import (  # noqa: E402
    HOLDOUT_SOUNDFONT,
    installed_soundfonts,
    is_soundfont,
)
from notewave.bridge.transcription.transcribe import load_transcriber  # noqa: E402
from notewave.core.io import atomic_open  # noqa: E402
from notewave.errors import NotewaveError  # noqa: E402
from notewave.paths import DATA_DIR, DEFAULT_TRANSCRIBER_CHECKPOINT, JSB_MIDI_DIR  # noqa: E402

CONDITIONS = [  # (name, GM program, family, seen in training)
    ("organ 19", 19, "organ", True),
    ("piano 0", 0, "piano", True),
    ("string ens. 48", 48, "ensemble", False),
    ("choir 52", 52, "ensemble", False),
]
SOUNDFONT_NAMES = ("TimGM6mb.sf2", "FluidR3_GM.sf2")


def basic_pitch_runner():
    """A function ``wav_path -> note rows [start, end, pitch]`` using basic-pitch's ONNX model on one
    thread, or ``(None, reason)`` when basic-pitch cannot be imported."""
    try:
        import onnxruntime as ort
        from basic_pitch import FilenameSuffix, build_icassp_2022_model_path
        from basic_pitch.inference import Model, predict
    except Exception as exc:  # ImportError, or a broken optional dependency
        return None, f"{type(exc).__name__}: {exc}"
    path = build_icassp_2022_model_path(FilenameSuffix.onnx)
    model = Model(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    model.model = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(wav_path: Path) -> np.ndarray:
        with contextlib.redirect_stdout(io.StringIO()):  # basic-pitch prints a line per file
            _, _, events = predict(str(wav_path), model)
        return np.array([(s, e, p) for s, e, p, *_ in events], dtype=np.float64).reshape(-1, 3)

    return run, "ok"


def ensemble_trained(ckpt: Path | None) -> bool:
    """Whether the checkpoint trained on the ensemble family (``training.augment.ensemble`` in its
    config.json; absent: held out, as for every checkpoint before session 11)."""
    path = Path(ckpt or DEFAULT_TRANSCRIBER_CHECKPOINT) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    return bool(((config.get("training") or {}).get("augment") or {}).get("ensemble", False))


def transcription_table(pieces: list[Path], seconds: float, fonts: list[Path], ckpt: Path | None) -> dict:
    """Per SoundFont and program: mean onset F1, F1 with offsets and x real time; ours and basic-pitch."""
    load_transcriber(ckpt)  # load once, outside the timings
    ensemble = ensemble_trained(ckpt)
    bp, bp_status = basic_pitch_runner()
    results = {"basic_pitch": bp_status, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for font in fonts:
            for name, program, family, seen in CONDITIONS:
                scores = {k: [] for k in ("ours_on", "ours_off", "bp_on", "bp_off")}
                audio_s, ours_s, bp_s = 0.0, 0.0, 0.0
                for path in pieces:
                    trip = roundtrip_piece(path, seconds, font, ckpt, program)
                    audio_s += trip.result.audio_seconds
                    ours_s += trip.result.transcribe_seconds
                    scores["ours_on"].append(trip.result.scores.f1)
                    scores["ours_off"].append(trip.result.scores.f1_with_offsets)
                    if bp is not None:
                        wav_path = write_wav(Path(tmp) / "x.wav", trip.audio, trip.sample_rate)
                        start = time.perf_counter()
                        rows = bp(wav_path)
                        bp_s += time.perf_counter() - start
                        theirs = score_notes(trip.reference, rows)
                        scores["bp_on"].append(theirs.f1)
                        scores["bp_off"].append(theirs.f1_with_offsets)
                seen = seen or (family == "ensemble" and ensemble)
                row = {"soundfont": font.name, "condition": name, "family": family, "seen_family": seen}
                row.update({k: float(np.mean(v)) if v else None for k, v in scores.items()})
                row["ours_xrt"] = audio_s / ours_s
                row["bp_xrt"] = audio_s / bp_s if bp is not None else None
                results["rows"].append(row)
                print(f"  {font.name:15s} {name:15s} ours onset F1 {row['ours_on']:.3f}", flush=True)
    return results


def engine_table(sets: dict[str, list[Path]], seconds: float, engines: dict, ckpt: Path | None) -> dict:
    """Per piece set and engine: mean onset F1 (and with offsets) of ours and basic-pitch, each piece
    rendered with its own programs; ``engines`` maps a column name to ``(engine, SoundFont or config)``."""
    load_transcriber(ckpt)
    bp, bp_status = basic_pitch_runner()
    results: dict = {
        "basic_pitch": bp_status,
        "engines": {k: str(v[1]) for k, v in engines.items()},
        "rows": [],
    }
    every: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for set_name, pieces in sets.items():
            row: dict = {"set": set_name, "pieces": len(pieces)}
            for column, (engine, font) in engines.items():
                scores: dict[str, list[float]] = {
                    f"{column} {k}": [] for k in ("ours", "bp", "ours off", "bp off")
                }
                for path in pieces:
                    trip = roundtrip_piece(path, seconds, font, ckpt, engine=engine)
                    scores[f"{column} ours"].append(trip.result.scores.f1)
                    scores[f"{column} ours off"].append(trip.result.scores.f1_with_offsets)
                    if bp is not None:
                        theirs = score_notes(
                            trip.reference, bp(write_wav(Path(tmp) / "x.wav", trip.audio, trip.sample_rate))
                        )
                        scores[f"{column} bp"].append(theirs.f1)
                        scores[f"{column} bp off"].append(theirs.f1_with_offsets)
                for key, values in scores.items():
                    row[key] = float(np.mean(values)) if values else None
                    every.setdefault(key, []).extend(values)
                print(f"  {set_name:22s} {column:28s} ours onset F1 {row[f'{column} ours']:.3f}", flush=True)
            results["rows"].append(row)
    total = sum(len(p) for p in sets.values())
    mean = {k: float(np.mean(v)) if v else None for k, v in every.items()}
    results["rows"].append({"set": f"all {total} pieces", "pieces": total, **mean})
    return results


def piece_sets(pieces: int, multi: list[Path] | None) -> dict[str, list[Path]]:
    """The first ``pieces`` JSB test chorales, and ``pieces`` test files evenly spaced by sorted path (so
    that they come from several groove families) of each multi-instrument folder (default: data/freedoom
    and data/mma when present)."""
    folders = (
        multi if multi is not None else [DATA_DIR / n for n in ("freedoom", "mma") if (DATA_DIR / n).is_dir()]
    )
    sets = {"JSB test chorales": heldout_pieces([JSB_MIDI_DIR / "test"], pieces)}
    for folder in folders:
        files = heldout_pieces([folder], 1_000_000)
        chosen = np.unique(np.linspace(0, len(files) - 1, min(pieces, len(files))).round().astype(int))
        sets[f"{folder.name} test (drums)"] = [files[i] for i in chosen]
    return sets


def print_engine_table(table: dict) -> None:
    columns = list(table["engines"])
    print(
        f"\nbasic-pitch: {table['basic_pitch']}; "
        + "; ".join(f"{c}: {v}" for c, v in table["engines"].items())
    )
    head = " | ".join(f"{c} ours | {c} basic-pitch | ratio" for c in columns)
    print(f"\n| pieces (own programs) | {head} |")
    print("|---|" + "---|---|---|" * len(columns))
    for r in table["rows"]:
        cells = [
            f"{fmt(r[f'{c} ours'])} | {fmt(r[f'{c} bp'])} | {ratio(r[f'{c} ours'], r[f'{c} bp'])}"
            for c in columns
        ]
        name = f"**{r['set']}**" if r["set"].startswith("all") else f"{r['set']} ({r['pieces']})"
        print(f"| {name} | " + " | ".join(cells) + " |")
    offs = " | ".join(f"{c} ours | {c} basic-pitch" for c in columns)
    print(f"\nF1 with offsets:\n\n| pieces | {offs} |\n|---|" + "---|---|" * len(columns))
    for r in table["rows"]:
        cells = [f"{fmt(r[f'{c} ours off'])} | {fmt(r[f'{c} bp off'])}" for c in columns]
        print(f"| {r['set']} | " + " | ".join(cells) + " |")


def render_speed(pieces: list[Path], fonts: list[Path]) -> list[dict]:
    """x real time of whole-chorale renders at 32 kHz: pyfluidsynth (in process) vs the fluidsynth CLI."""
    cli = shutil.which("fluidsynth")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for font in fonts:
            audio_py = audio_cli = t_py = t_cli = 0.0
            for path in pieces:
                start = time.perf_counter()
                wav, rate = render_midi(path, 32000, soundfont=font)
                t_py += time.perf_counter() - start
                audio_py += wav.shape[1] / rate
                if cli:
                    target = Path(tmp) / "cli.wav"
                    start = time.perf_counter()
                    cmd = [cli, "-ni", "-q", "-F", str(target), "-r", "32000", str(font), str(path)]
                    subprocess.run(cmd, check=True, capture_output=True)
                    t_cli += time.perf_counter() - start
                    import soundfile

                    audio_cli += soundfile.info(str(target)).duration
            out.append(
                {
                    "soundfont": font.name,
                    "pyfluidsynth_xrt": audio_py / t_py,
                    "cli_xrt": audio_cli / t_cli if cli else None,
                }
            )
    return out


def fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or not b else f"{a / b:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=4, help="JSB test chorales to use (default 4)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of each chorale (default 20)")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="transcriber checkpoint (default: shipped)"
    )
    parser.add_argument(
        "--midi", type=Path, action="append", default=None, help="use this folder's held-out files instead"
    )
    parser.add_argument(
        "--multi",
        type=Path,
        action="append",
        default=None,
        help="multi-instrument folder (test split) for "
        "the generalization table (repeatable; default data/freedoom and data/mma when present)",
    )
    parser.add_argument(
        "--holdout-soundfont", default=HOLDOUT_SOUNDFONT, help="SoundFont held out of training"
    )
    parser.add_argument("--generalization-only", action="store_true", help="only the generalization table")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    try:
        pieces = heldout_pieces(args.midi, args.pieces)
    except NotewaveError as exc:
        parser.error(str(exc))
    where = f"held-out files of {', '.join(str(f) for f in args.midi)}" if args.midi else "JSB test chorales"
    found = {p.name: p for p in reversed(list_soundfonts()) if p.name in SOUNDFONT_NAMES}
    fonts = [found[name] for name in SOUNDFONT_NAMES if name in found]
    ckpt = args.checkpoint or DEFAULT_TRANSCRIBER_CHECKPOINT
    held = [p for p in installed_soundfonts() if is_soundfont(p, args.holdout_soundfont)]
    engines = {f"FluidSynth {held[0].stem}": ("fluidsynth", held[0])} if held else {}
    try:
        timidity_binary()
        engines["TiMidity Freepats"] = ("timidity", DEFAULT_CONFIG)
    except NotewaveError as exc:
        print(f"no TiMidity column: {exc}")
    try:
        sets = piece_sets(args.pieces, args.multi)
    except NotewaveError as exc:
        parser.error(str(exc))
    print(f"generalization: {', '.join(f'{len(v)} {k}' for k, v in sets.items())} x {args.seconds:g} s")
    general = engine_table(sets, args.seconds, engines, args.checkpoint)
    print_engine_table(general)
    if args.generalization_only:
        if args.json:
            with atomic_open(args.json) as handle:
                json.dump({"generalization": general}, handle, indent=2)
        return 0
    print(f"\n{len(pieces)} {where} x {args.seconds:g} s; checkpoint {ckpt}; one CPU thread")
    table = transcription_table(pieces, args.seconds, fonts, args.checkpoint)
    speed = render_speed(pieces, fonts)
    print(f"\nbasic-pitch: {table['basic_pitch']}")
    print(
        "\n| SoundFont | program (family) | ours onset F1 | basic-pitch onset F1 | ratio "
        "| ours F1 w/ offsets | basic-pitch F1 w/ offsets | ratio | ours x RT | basic-pitch x RT | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table["rows"]:
        fam = f"{r['family']}, {'trained family' if r['seen_family'] else 'held-out family'}"
        print(
            f"| {r['soundfont']} | {r['condition']} ({fam}) | {fmt(r['ours_on'])} | {fmt(r['bp_on'])} | "
            f"{ratio(r['ours_on'], r['bp_on'])} | {fmt(r['ours_off'])} | {fmt(r['bp_off'])} | "
            f"{ratio(r['ours_off'], r['bp_off'])} | {fmt(r['ours_xrt'], 0)} | {fmt(r['bp_xrt'], 0)} | "
            f"{ratio(r['ours_xrt'], r['bp_xrt'])} |"
        )
    print("\n| SoundFont | pyfluidsynth x RT | fluidsynth CLI x RT | ratio |")
    print("|---|---|---|---|")
    for s in speed:
        print(
            f"| {s['soundfont']} | {fmt(s['pyfluidsynth_xrt'], 0)} | {fmt(s['cli_xrt'], 0)} | "
            f"{ratio(s['pyfluidsynth_xrt'], s['cli_xrt'])} |"
        )
    if args.json:
        with atomic_open(args.json) as handle:
            json.dump(
                {"generalization": general, "transcription": table, "render_speed": speed}, handle, indent=2
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

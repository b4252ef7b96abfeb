"""``notewave train transcriber``: train the :class:`~notewave.bridge.transcriber_model.Transcriber`
on FluidSynth renders of real MIDI files.

Data: the MIDI files of each ``--midi`` folder (its ``train/`` sub-folder when there is one,
validation from ``valid/``; else every 20th file is held out for validation). The JSB test
split (``data/jsb/test``) is refused: it is kept for the round-trip benchmark.

Examples are made on the fly and cached in memory. A pool of "medleys" is kept: each medley
joins excerpts (at most ``excerpt_seconds`` long) of ``pieces_per_medley`` random pieces, each
with a random tempo factor (0.75..1.33), transposition (-5..+6 semitones, kept on the piano),
per-piece base velocity (45..110) with per-note jitter, and random General MIDI programs from the
training families (one program for every voice, or one per voice), rendered at 16 kHz with a
random SoundFont (TimGM6mb and FluidR3_GM when installed). The audio is stored with its
piano-roll labels (onset, offset and frame at 31.25 frames/s; velocity / 127 at onsets). Every
``refresh_every`` steps the oldest medley is replaced by a new render. A training example is a
random ``clip_seconds`` crop with random gain (-18..+8 dB) and, half of the time, white noise
(-75..-40 dBFS RMS).

Held out for the benchmark (never in training): the JSB test chorales and the GM "ensemble"
program family (48-55: string ensembles, choir aahs, voice oohs, synth voice, orchestra hit).

Loss: binary cross-entropy of the onset, offset and frame heads plus the squared velocity error at
labelled onsets (Hawthorne et al. 2018); onset labels are split between the two frames around the
true onset time and onset positives weigh :data:`ONSET_POS_WEIGHT` (5) times more, which makes the
onset head fire above 0.5 within a few hundred steps. Optimisation: :class:`notewave.core.train.Trainer`
(AdamW, lr 2e-3, warmup, cosine decay, checkpoints ``best/`` by validation loss and ``last/``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from symusic import Note, Score, Tempo, TimeSignature, Track

from notewave.bridge.transcribe import TICKS_PER_QUARTER, TICKS_PER_SECOND, decode_notes
from notewave.bridge.transcriber_model import (
    HEADS,
    MAX_MIDI,
    MIN_MIDI,
    N_KEYS,
    Transcriber,
    TranscriberConfig,
)
from notewave.core.train import TrainConfig, Trainer, setup_distributed
from notewave.errors import DataError, SoundfontError
from notewave.paths import JSB_MIDI_DIR

TRAIN_FAMILIES: dict[str, tuple[int, ...]] = {
    "piano": tuple(range(0, 8)),
    "organ": tuple(range(16, 24)),
    "guitar": tuple(range(24, 32)),
    "bass": tuple(range(32, 40)),
    "strings": tuple(range(40, 47)),
    "brass": tuple(range(56, 64)),
    "reed": tuple(range(64, 72)),
    "pipe": tuple(range(72, 80)),
}
HELDOUT_FAMILIES: dict[str, tuple[int, ...]] = {"ensemble": tuple(range(48, 56))}
TRAIN_PROGRAMS = tuple(p for family in TRAIN_FAMILIES.values() for p in family)
TRAIN_SOUNDFONTS = ("TimGM6mb.sf2", "FluidR3_GM.sf2")
ONSET_POS_WEIGHT = 5.0  # onsets are ~0.2 % of the (frame, key) cells

PieceNotes = np.ndarray  # float64 [n, 5]: start s, end s, pitch, velocity, voice index


def load_piece(path: str | os.PathLike[str]) -> PieceNotes:
    """Non-drum notes of a MIDI file as rows ``[start_s, end_s, pitch, velocity, voice]`` sorted by start."""
    from notewave.core.midi import load_score

    score = load_score(path).to("second")
    rows = [
        (n.time, n.time + n.duration, n.pitch, n.velocity, v)
        for v, t in enumerate(tr for tr in score.tracks if not tr.is_drum)
        for n in t.notes
    ]
    return np.array(sorted(rows), dtype=np.float64).reshape(-1, 5)


def training_files(folders: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[Path]]:
    """Training and validation MIDI files of ``folders`` (see the module docstring).

    Raises:
        DataError: missing/empty folders, or a file from the held-out JSB test split.
    """
    from notewave.symbolic.train import split_folder

    train: list[Path] = []
    valid: list[Path] = []
    for folder in folders:
        t, v = split_folder(Path(folder))
        train += t
        valid += v
    test_dir = (JSB_MIDI_DIR / "test").resolve()
    for f in train + valid:
        if test_dir in f.resolve().parents:
            raise DataError(
                f"{f} is in the held-out JSB test split; train on data/jsb (train/ and valid/) instead"
            )
    if not train:
        raise DataError(f"no training MIDI files in {list(map(str, folders))}")
    return train, valid


def make_medley(
    pieces: Sequence[PieceNotes],
    rng: np.random.Generator,
    programs: Sequence[int] = TRAIN_PROGRAMS,
    excerpt_seconds: float = 30.0,
    augment: bool = True,
) -> tuple[Score, np.ndarray]:
    """Join excerpts of ``pieces`` (with random programs and, when ``augment``, tempo/key/velocity changes).

    Returns:
        ``(score, notes)``: a ``Score`` at 120 BPM (960 ticks per second), one track per program, and
        the notes as float64 rows ``[start_s, end_s, pitch, velocity]`` on the same tick grid.
    """
    tracks: dict[int, Track] = {}
    labels, cursor = [], 0.0
    for notes in pieces:
        factor = float(np.exp(rng.uniform(np.log(0.75), np.log(1.33)))) if augment else 1.0
        shift = int(rng.integers(-5, 7)) if augment else 0
        lo, hi = notes[:, 2].min() + shift, notes[:, 2].max() + shift
        shift -= int(max(0, hi - MAX_MIDI) - max(0, MIN_MIDI - lo))
        start, end = notes[:, 0] * factor, notes[:, 1] * factor
        first = 0.0
        if end.max() > excerpt_seconds:
            first = float(rng.uniform(0, end.max() - excerpt_seconds))
        keep = (start >= first) & (start < first + excerpt_seconds)
        n_voices = int(notes[:, 4].max()) + 1
        voice_prog = (
            np.full(n_voices, rng.choice(programs)) if rng.random() < 0.35 else rng.choice(programs, n_voices)
        )
        base = rng.uniform(45, 110) if augment else 80.0
        vel = np.clip(np.rint(base + rng.normal(0, 8, len(notes))), 15, 127) if augment else notes[:, 3]
        for i in np.flatnonzero(keep):
            t0 = int(round((cursor + start[i] - first) * TICKS_PER_SECOND))
            t1 = int(round((cursor + min(end[i], first + excerpt_seconds) - first) * TICKS_PER_SECOND))
            program = int(voice_prog[int(notes[i, 4])])
            track = tracks.setdefault(program, Track(name=f"p{program}", program=program, is_drum=False))
            track.notes.append(Note(t0, max(1, t1 - t0), int(notes[i, 2]) + shift, int(vel[i])))
            labels.append(
                (t0 / TICKS_PER_SECOND, max(t0 + 1, t1) / TICKS_PER_SECOND, notes[i, 2] + shift, vel[i])
            )
        cursor += min(float(end.max()) - first, excerpt_seconds) + (rng.uniform(0.5, 1.5) if augment else 1.0)
    score = Score(TICKS_PER_QUARTER)
    score.tempos.append(Tempo(0, qpm=120.0))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    for program in sorted(tracks):
        score.tracks.append(tracks[program])
    return score, np.array(sorted(labels), dtype=np.float64).reshape(-1, 4)


def piano_roll(notes: np.ndarray, n_frames: int, frames_per_second: float) -> dict[str, np.ndarray]:
    """Piano-roll labels (float32 ``[n_frames, 88]`` per head) of notes ``[start_s, end_s, pitch, vel]``.

    Frame ``t`` is centred at ``t / frames_per_second`` s. A note covers frames ``round(start * fps)`` up to
    (not including) ``round(end * fps)`` (at least one); its offset is the frame ``round(end * fps)``. The
    onset label is split linearly between the two frames around ``start * fps`` (the nearer one gets
    >= 0.5), so that the onset peak also encodes the sub-frame time; velocity (MIDI velocity / 127) is
    set at the nearer frame.
    """
    roll = {h: np.zeros((n_frames, N_KEYS), dtype=np.float32) for h in HEADS}
    for start, end, pitch, vel in notes:
        key, pos = int(pitch) - MIN_MIDI, start * frames_per_second
        on, off = int(round(pos)), max(int(round(pos)) + 1, int(round(end * frames_per_second)))
        if not 0 <= key < N_KEYS or on >= n_frames:
            continue
        first, frac = int(np.floor(pos)), float(pos - np.floor(pos))
        for t, weight in ((first, 1.0 - frac), (first + 1, frac)):
            if t < n_frames:
                roll["onset"][t, key] = max(roll["onset"][t, key], weight)
        roll["frame"][on:off, key] = 1
        roll["velocity"][on, key] = max(roll["velocity"][on, key], vel / 127.0)
        if off < n_frames:
            roll["offset"][off, key] = 1
    return roll


class MedleyPool:
    """Rendered medleys (padded audio + labels) and on-the-fly crops for training batches."""

    def __init__(
        self,
        pieces: list[PieceNotes],
        cfg: TranscriberConfig,
        soundfonts: list[Path],
        size: int,
        pieces_per_medley: int = 4,
        excerpt_seconds: float = 30.0,
    ):
        self.pieces, self.cfg, self.soundfonts = pieces, cfg, soundfonts
        self.size, self.per, self.excerpt = size, pieces_per_medley, excerpt_seconds
        self.items: list[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]] = []

    def render(
        self,
        rng: np.random.Generator,
        pieces: list[PieceNotes] | None = None,
        augment: bool = True,
        soundfont: Path | None = None,
        programs: Sequence[int] = TRAIN_PROGRAMS,
    ) -> tuple:
        """Render one medley: ``(padded wav float32 [samples + n_fft], labels, notes)``."""
        from notewave.bridge.render import render_midi

        if pieces is None:
            pieces = [
                self.pieces[i] for i in rng.choice(len(self.pieces), min(self.per, len(self.pieces)), False)
            ]
        score, notes = make_medley(pieces, rng, programs, self.excerpt, augment)
        sf = soundfont or self.soundfonts[int(rng.integers(len(self.soundfonts)))]
        wav, _ = render_midi(score, self.cfg.sample_rate, soundfont=sf, tail_seconds=0.5)
        n_frames = 1 + wav.shape[1] // self.cfg.hop_length
        pad = self.cfg.n_fft // 2
        return np.pad(wav[0], (pad, pad)), piano_roll(notes, n_frames, self.cfg.frames_per_second), notes

    def refresh(self, rng: np.random.Generator) -> None:
        """Add a new medley, dropping the oldest when the pool is full."""
        self.items.append(self.render(rng))
        if len(self.items) > self.size:
            self.items.pop(0)

    def batch(self, rng: np.random.Generator, batch_size: int, clip_frames: int) -> tuple[torch.Tensor, dict]:
        """Augmented crops: wav ``[B, (clip_frames - 1) * hop + n_fft]``, labels ``[B, clip_frames, 88]``."""
        hop, n_fft = self.cfg.hop_length, self.cfg.n_fft
        length = (clip_frames - 1) * hop + n_fft
        weights = np.array([len(item[0]) for item in self.items], dtype=np.float64)
        wavs, labels = [], {h: [] for h in HEADS}
        for i in rng.choice(len(self.items), batch_size, p=weights / weights.sum()):
            wav, roll, _ = self.items[i]
            f0 = int(rng.integers(0, max(1, roll["frame"].shape[0] - clip_frames + 1)))
            crop = np.zeros(length, np.float32)
            piece = wav[f0 * hop : f0 * hop + length]
            crop[: len(piece)] = piece * np.float32(10 ** (rng.uniform(-18, 8) / 20))
            if rng.random() < 0.5:
                crop += rng.normal(0, 10 ** (rng.uniform(-75, -40) / 20), length).astype(np.float32)
            wavs.append(np.clip(crop, -1, 1))
            for h in HEADS:
                lab = np.zeros((clip_frames, N_KEYS), np.float32)
                part = roll[h][f0 : f0 + clip_frames]
                lab[: len(part)] = part
                labels[h].append(lab)
        out = {h: torch.from_numpy(np.stack(v)) for h, v in labels.items()}
        return torch.from_numpy(np.stack(wavs)), out


def score_to_intervals(score: Score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-drum notes of ``score`` as ``(intervals [n, 2] in s, pitches [n] in Hz, velocities [n])``,
    sorted, the format of ``mir_eval.transcription``."""
    sec = score.to("second")
    rows = [(n.time, n.end, n.pitch, n.velocity) for t in sec.tracks if not t.is_drum for n in t.notes]
    arr = np.array(sorted(rows), dtype=np.float64).reshape(-1, 4)
    return arr[:, :2], 440.0 * 2.0 ** ((arr[:, 2] - 69.0) / 12.0), arr[:, 3]


def note_f1(
    ref: np.ndarray, est: Score | Sequence[Any], with_offsets: bool = False
) -> tuple[float, float, float]:
    """``(precision, recall, F1)`` from ``mir_eval.transcription.precision_recall_f1_overlap``.

    Onset tolerance 50 ms; offsets ignored, or within 20 % / 50 ms when ``with_offsets``. ``est`` is a
    ``Score`` or a :class:`~notewave.bridge.transcribe.NoteEvent` list, ``ref`` float rows
    ``[start_s, end_s, pitch, ...]``. With no reference or no estimated notes, all three are 1.0 when
    both are empty, else 0.0.
    """
    import mir_eval

    if isinstance(est, Score):
        est_iv, est_hz, _ = score_to_intervals(est)
    else:
        est_iv = np.array([[n.start, n.end] for n in est], dtype=np.float64).reshape(-1, 2)
        est_hz = 440.0 * 2.0 ** ((np.array([n.pitch for n in est], dtype=np.float64) - 69) / 12)
    ref_hz = 440.0 * 2.0 ** ((np.asarray(ref)[:, 2] - 69) / 12)
    if len(ref_hz) == 0 or len(est_hz) == 0:
        return (float(len(ref_hz) == len(est_hz)),) * 3
    return mir_eval.transcription.precision_recall_f1_overlap(
        np.asarray(ref)[:, :2],
        ref_hz,
        est_iv,
        est_hz,
        onset_tolerance=0.05,
        offset_ratio=0.2 if with_offsets else None,
    )[:3]


def transcription_loss(logits: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> torch.Tensor:
    """Onset, offset and frame binary cross-entropy (means over frames and keys; onset positives weighted
    :data:`ONSET_POS_WEIGHT`) plus the squared velocity error at onsets (labels >= 0.5)."""
    weight = torch.tensor(ONSET_POS_WEIGHT, device=labels["onset"].device)
    loss = F.binary_cross_entropy_with_logits(logits["onset"].float(), labels["onset"], pos_weight=weight)
    for head in ("offset", "frame"):
        loss = loss + F.binary_cross_entropy_with_logits(logits[head].float(), labels[head])
    mask = (labels["onset"] >= 0.5).float()
    error = (torch.sigmoid(logits["velocity"].float()) - labels["velocity"]) ** 2
    return loss + (error * mask).sum() / mask.sum().clamp_min(1)


def onset_f1(model: Transcriber, items: list[tuple], with_offsets: bool = False) -> float:
    """Mean note F1 (see :func:`note_f1`) of ``model`` over rendered pool ``items``."""
    scores = []
    for wav, _, notes in items:
        pad = model.config.n_fft // 2
        act = model.activations(wav[pad:-pad])
        est = decode_notes(
            act["onset"], act["frame"], act["velocity"], frames_per_second=model.config.frames_per_second
        )
        scores.append(note_f1(notes, est, with_offsets)[2])
    return float(np.mean(scores)) if scores else 0.0


def _soundfonts(names: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    from notewave.bridge.soundfont import find_soundfont, list_soundfonts

    if names:
        return [find_soundfont(n) for n in names]
    found = list({p.name: p for p in reversed(list_soundfonts()) if p.name in TRAIN_SOUNDFONTS}.values())
    if not found:
        try:
            found = [find_soundfont(None)]
        except SoundfontError as exc:
            raise SoundfontError(f"training renders need a SoundFont: {exc}") from exc
    return found


def train_transcriber(
    midi_dirs: Sequence[str | os.PathLike[str]],
    run_dir: str | os.PathLike[str],
    steps: int = 1000,
    batch_size: int = 8,
    lr: float = 2e-3,
    clip_seconds: float = 5.0,
    pool_size: int = 12,
    refresh_every: int = 8,
    eval_every: int = 100,
    val_pieces: int = 8,
    soundfonts: Sequence[str | os.PathLike[str]] | None = None,
    resume: bool = False,
    seed: int = 0,
    config: TranscriberConfig | None = None,
) -> dict[str, Any]:
    """Train a transcriber; writes ``run_dir/best``, ``run_dir/last`` and ``run_dir/summary.json``.

    Args:
        midi_dirs: MIDI folders (see :func:`training_files`).
        steps, batch_size, lr: optimisation (AdamW, warmup + cosine; ``batch_size`` crops per step).
        clip_seconds: crop length in seconds; pool_size: medleys kept; refresh_every: steps per new medley.
        eval_every: validate (loss, onset F1) and save every N steps; val_pieces: validation excerpts (15 s).
        soundfonts: SoundFont paths (default: TimGM6mb and FluidR3_GM when installed).
        resume: continue from ``run_dir/last``.

    Returns:
        Summary dict: steps, wall time (s), best validation loss, final validation onset F1, parameters.

    Raises:
        DataError, SoundfontError, CheckpointError (resume), RenderError.
    """
    start_time, start_cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    run = Path(run_dir)
    train_files, valid_files = training_files(midi_dirs)
    fonts = _soundfonts(soundfonts)
    model = (
        Transcriber.from_pretrained(run / "last") if resume else Transcriber(config or TranscriberConfig())
    )
    cfg = model.config
    pieces = [p for p in map(load_piece, train_files) if len(p)]
    rng = np.random.default_rng(seed + (1_000_003 if resume else 0))
    pool = MedleyPool(pieces, cfg, fonts, pool_size)
    for _ in range(pool_size):
        pool.refresh(rng)
    if not resume:  # feature standardisation from the (un-augmented) first pool
        mel = torch.cat(
            [model.features.log_mel(torch.from_numpy(w[None]), center=False)[0] for w, _, _ in pool.items]
        )
        model.features.feature_mean.copy_(mel.mean(0))
        model.features.feature_std.copy_(mel.std(0).clamp_min(1e-3))
    val_rng = np.random.default_rng(12345)
    val_src = [p for p in map(load_piece, valid_files[:val_pieces]) if len(p)]
    pool.excerpt = 15.0  # validation: the first 15 s of each piece, at its own tempo, key and velocities
    val_items = [pool.render(val_rng, [p], False, fonts[i % len(fonts)]) for i, p in enumerate(val_src)]
    pool.excerpt = 30.0
    clip_frames = max(8, int(round(clip_seconds * cfg.frames_per_second)))
    calls = [0]

    def batch_fn(generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        local = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        calls[0] += 1
        if calls[0] % refresh_every == 0:
            pool.refresh(local)
        return pool.batch(local, batch_size, clip_frames)

    def loss_fn(forward: Any, batch: tuple[torch.Tensor, dict[str, torch.Tensor]]) -> torch.Tensor:
        wav, labels = batch
        return transcription_loss(forward(wav, center=False), labels)

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        if not val_items:
            return {}
        losses = []
        for wav, roll, _ in val_items:
            logits = m(torch.from_numpy(wav[None]), center=False)
            labels = {h: torch.from_numpy(roll[h][None]) for h in HEADS}
            losses.append(float(transcription_loss(logits, labels)))
        return {"val_loss": float(np.mean(losses)), "val_onset_f1": onset_f1(m, val_items)}  # type: ignore[arg-type]

    def save_fn(m: torch.nn.Module, folder: Path, extra: Any, info: dict[str, Any]) -> None:
        m.save_pretrained(folder, extra_config={"training": info}, extra_files=extra)  # type: ignore[operator]

    tcfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup=min(100, steps // 10),
        weight_decay=0.01,
        eval_every=eval_every,
        save_every=eval_every,
        seed=seed,
    )
    trainer = Trainer(model, tcfg, run, batch_fn, loss_fn, eval_fn, save_fn, setup_distributed())
    if resume:
        trainer.resume()
    history = trainer.run()
    summary = {
        "steps": trainer.step,
        "wall_s": round(time.perf_counter() - start_time, 1),
        "cpu_s": round(time.process_time() - start_cpu, 1),
        "best_val_loss": trainer.best,
        "final_val_onset_f1": history[-1].get("val_onset_f1") if history else None,
        "parameters": model.num_parameters(),
        "train_pieces": len(pieces),
        "val_pieces": len(val_items),
        "soundfonts": [str(f) for f in fonts],
        "history": history,
    }
    run.mkdir(parents=True, exist_ok=True)
    (run / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _cli_train(args: argparse.Namespace) -> int:
    summary = train_transcriber(
        args.midi,
        args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        soundfonts=args.soundfont,
        resume=args.resume,
        seed=args.seed,
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    print(f"checkpoints: {Path(args.out) / 'best'} (lowest validation loss), {Path(args.out) / 'last'}")
    return 0


def add_train_cli(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train transcriber --midi DIR [--midi DIR2] --out RUN_DIR [--steps N] [--resume]``."""
    about = "train the audio-to-notes transcriber on FluidSynth renders of MIDI folders"
    p = sub.add_parser("transcriber", help=about, description=about + " (the JSB test split is refused).")
    p.add_argument("--midi", action="append", required=True, metavar="DIR", help="MIDI folder (repeatable)")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints best/ and last/)")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    p.add_argument("--batch-size", type=int, default=8, help="5-second crops per step (default 8)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    p.add_argument(
        "--eval-every", type=int, default=100, help="validate and save every N steps (default 100)"
    )
    p.add_argument(
        "--soundfont", action="append", help="SoundFont for renders (repeatable; default both GM fonts)"
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cli_train)
    return p

"""``notewave train transcriber``: train the :class:`~notewave.bridge.transcription.model.Transcriber`
on FluidSynth renders of real MIDI files (data, augmentation and labels:
:mod:`notewave.bridge.transcription.data`).

Loss: binary cross-entropy of the onset, offset and frame heads plus the squared velocity error at
labelled onsets (Hawthorne et al. 2018); onset labels are split between the two frames around the
true onset time and onset positives weigh :data:`ONSET_POS_WEIGHT` (5) times more, which makes the
onset head fire above 0.5 within a few hundred steps. With ``harmonic_negatives`` W > 1 the onset
head's negatives where a true onset's harmonics lie (:func:`harmonic_negative_mask`) weigh W: the
network's commonest false notes are an octave away from, or another harmonic of, a true note. Optimisation:
:class:`notewave.core.train.Trainer` (AdamW, lr 2e-3, warmup, cosine decay, checkpoints ``best/`` by
validation loss and ``last/``).
Augmentation (on by default; SoundFonts, effects, EQ, drums, gain, noise):
:mod:`notewave.bridge.transcription.augment`; ``init`` fine-tunes a trained checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from symusic import Score

from notewave.bridge.transcription.augment import (
    HOLDOUT_SOUNDFONT,
    Augmentation,
    is_soundfont,
    training_soundfonts,
)
from notewave.bridge.transcription.data import (
    HELDOUT_FAMILIES,
    TRAIN_FAMILIES,
    TRAIN_PROGRAMS,
    TRAIN_SOUNDFONTS,
    MedleyPool,
    PieceNotes,
    _soundfonts,
    load_piece,
    make_medley,
    piano_roll,
    training_files,
)
from notewave.bridge.transcription.harmonic import semitone_shift
from notewave.bridge.transcription.model import HEADS, Transcriber, TranscriberConfig
from notewave.bridge.transcription.notes import decode_notes
from notewave.core.train import TrainConfig, Trainer, setup_distributed
from notewave.errors import ConfigError

__all__ = [  # data names re-exported from transcriber_data for existing importers
    "HARMONIC_SHIFTS",
    "HELDOUT_FAMILIES",
    "ONSET_POS_WEIGHT",
    "TRAIN_FAMILIES",
    "TRAIN_PROGRAMS",
    "TRAIN_SOUNDFONTS",
    "MedleyPool",
    "PieceNotes",
    "harmonic_negative_mask",
    "load_piece",
    "make_medley",
    "note_f1",
    "onset_f1",
    "piano_roll",
    "score_to_intervals",
    "train_transcriber",
    "training_files",
    "transcription_loss",
]

ONSET_POS_WEIGHT = 5.0  # onsets are ~0.2 % of the (frame, key) cells
#: semitones from a note to its harmonics 2, 3, 4, 5, 6 and 8 (12, 19, 24, 28, 31, 36: all above it,
#: where a note's partials lie)
HARMONIC_SHIFTS = tuple(semitone_shift(h) for h in (2, 3, 4, 5, 6, 8))
MIN_NOTE_SECONDS = 1e-3  # zero-length notes are scored as this long


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
    ``Score`` or a :class:`~notewave.bridge.transcription.notes.NoteEvent` list, ``ref`` float rows
    ``[start_s, end_s, pitch, ...]``. With no reference or no estimated notes, all three are 1.0 when
    both are empty, else 0.0. Notes of zero length (a MIDI note-on and note-off at one tick; synths
    still sound them) count as lasting :data:`MIN_NOTE_SECONDS` (mir_eval refuses empty intervals).
    """
    import mir_eval

    def _lengthened(iv: np.ndarray) -> np.ndarray:
        return np.column_stack([iv[:, 0], np.maximum(iv[:, 1], iv[:, 0] + MIN_NOTE_SECONDS)])

    if isinstance(est, Score):
        est_iv, est_hz, _ = score_to_intervals(est)
    else:
        est_iv = np.array([[n.start, n.end] for n in est], dtype=np.float64).reshape(-1, 2)
        est_hz = 440.0 * 2.0 ** ((np.array([n.pitch for n in est], dtype=np.float64) - 69) / 12)
    ref_hz = 440.0 * 2.0 ** ((np.asarray(ref)[:, 2] - 69) / 12)
    if len(ref_hz) == 0 or len(est_hz) == 0:
        return (float(len(ref_hz) == len(est_hz)),) * 3
    return mir_eval.transcription.precision_recall_f1_overlap(
        _lengthened(np.asarray(ref, dtype=np.float64)[:, :2]),
        ref_hz,
        _lengthened(est_iv),
        est_hz,
        onset_tolerance=0.05,
        offset_ratio=0.2 if with_offsets else None,
    )[:3]


def harmonic_negative_mask(onset: torch.Tensor) -> torch.Tensor:
    """Cells of an onset roll where no note starts but a true onset's harmonic lies.

    Args:
        onset: float ``[B, frames, 88]`` onset labels (0..1; a cell counts as an onset at >= 0.5).

    Returns:
        bool ``[B, frames, 88]``: True where the label is 0 and, within one frame, a key
        :data:`HARMONIC_SHIFTS` semitones below has an onset (the onset's octaves and upper harmonics):
        the places of octave and harmonic false notes.
    """
    on = (onset >= 0.5).float()
    near = F.max_pool1d(on.transpose(1, 2), 3, 1, 1).transpose(1, 2)  # +-1 frame
    mask = torch.zeros_like(near)
    keys = onset.shape[-1]
    for shift in HARMONIC_SHIFTS:
        mask[..., shift:] = torch.maximum(mask[..., shift:], near[..., : keys - shift])
    return (mask > 0) & (onset == 0)


def transcription_loss(
    logits: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], harmonic_negatives: float = 1.0
) -> torch.Tensor:
    """Onset, offset and frame binary cross-entropy (means over frames and keys; onset positives weighted
    :data:`ONSET_POS_WEIGHT`, onset negatives at a true onset's harmonics (:func:`harmonic_negative_mask`)
    weighted ``harmonic_negatives``) plus the squared velocity error at onsets (labels >= 0.5): a 0-d
    float32 tensor."""
    weight = torch.tensor(ONSET_POS_WEIGHT, device=labels["onset"].device)
    cell = None
    if harmonic_negatives != 1.0:
        cell = 1.0 + (harmonic_negatives - 1.0) * harmonic_negative_mask(labels["onset"]).float()
    loss = F.binary_cross_entropy_with_logits(
        logits["onset"].float(), labels["onset"], weight=cell, pos_weight=weight
    )
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
    precision: str = "auto",
    augment: bool | Augmentation = True,
    holdout_soundfont: str | os.PathLike[str] | None = HOLDOUT_SOUNDFONT,
    init: str | os.PathLike[str] | None = None,
    harmonic_channels: int | None = None,
    harmonic_negatives: float = 1.0,
) -> dict[str, Any]:
    """Train a transcriber; writes ``run_dir/best``, ``run_dir/last`` and ``run_dir/summary.json``.

    Args:
        midi_dirs: MIDI folders (see :func:`training_files`).
        steps, batch_size, lr: optimisation (AdamW, warmup + cosine; ``batch_size`` crops per step).
        clip_seconds: crop length in seconds; pool_size: medleys kept; refresh_every: steps per new medley.
        eval_every: validate (loss, onset F1) and save every N steps; val_pieces: validation excerpts (15 s),
            the first validation files of the folders in turn (folder 1, folder 2, ..., folder 1, ...).
        soundfonts: SoundFont paths (default with ``augment``: every installed SoundFont but
            ``holdout_soundfont``; without: TimGM6mb and FluidR3_GM when installed).
        resume: continue from ``run_dir/last``.
        augment: ``True`` (default) for :class:`~notewave.bridge.transcription.augment.Augmentation`'s
            defaults, an ``Augmentation`` for others, ``False`` for the plain renders of
            :mod:`~notewave.bridge.transcription.data` (no effects, EQ or drums).
        holdout_soundfont: a SoundFont (path, file name or stem) never rendered in training, kept
            for evaluation (default :data:`~notewave.bridge.transcription.augment.HOLDOUT_SOUNDFONT`).
        init: a transcriber checkpoint folder to start from (its weights, sizes and feature
            standardisation; the optimizer and schedule start anew); not with ``config`` or ``resume``.
        harmonic_channels: give the network a harmonic stack of this many channels
            (:mod:`~notewave.bridge.transcription.harmonic`) when it has none: a new network, or one
            from ``init`` (the stack's output starts at zero, so training starts from ``init``'s output).
        harmonic_negatives: weight of the onset head's negatives at a true onset's harmonics in the
            training loss (:func:`transcription_loss`; 1: unweighted); validation loss stays unweighted.
        precision: ``auto`` (bf16 autocast only where the device runs bf16 natively), ``fp32`` or
            ``bf16`` (falls back to fp32 with a warning where not native); see :mod:`notewave.core.precision`.

    Returns:
        Summary dict: steps, wall time (s), best validation loss, final validation onset F1, parameters.

    Raises:
        DataError, SoundfontError, CheckpointError (resume, init), RenderError; ConfigError for a
        held-out SoundFont among ``soundfonts``, ``init`` with ``config`` or ``resume``, ``config``
        with ``resume`` (the run's own network is kept), or ``harmonic_channels`` other than the
        network's own harmonic stack, or ``harmonic_negatives`` below 1.
    """
    start_time, start_cpu = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    run = Path(run_dir)
    if init is not None and (config is not None or resume):
        raise ConfigError("init starts from a checkpoint: give neither config nor resume with it")
    if config is not None and resume:
        raise ConfigError("resume keeps the run's network: give no config (--resume: no size options)")
    if not harmonic_negatives >= 1.0:
        raise ConfigError(f"harmonic_negatives must be >= 1 (1: unweighted), got {harmonic_negatives}")
    mix = augment if isinstance(augment, Augmentation) else Augmentation() if augment else None
    train_files, _ = training_files(midi_dirs)  # (checks every file against the JSB test split)
    fonts = training_soundfonts(soundfonts, holdout_soundfont) if mix else _soundfonts(soundfonts)
    held = [f for f in fonts if is_soundfont(f, holdout_soundfont)]
    if held:
        raise ConfigError(f"SoundFont {str(held[0])!r} is held out of training (holdout {holdout_soundfont})")
    if resume:
        model = Transcriber.from_pretrained(run / "last")
    else:
        model = Transcriber.from_pretrained(init) if init else Transcriber(config or TranscriberConfig())
    if harmonic_channels and model.harmonic is None:
        model = model.with_harmonic_stack(harmonic_channels)
    elif harmonic_channels and model.config.harmonic_channels != harmonic_channels:
        raise ConfigError(
            f"the network already has a harmonic stack of {model.config.harmonic_channels} channels,"
            f" not {harmonic_channels}"
        )
    cfg = model.config
    drums = mix is not None and mix.drums
    pieces = [p for p in (load_piece(f, drums) for f in train_files) if len(p)]
    rng = np.random.default_rng(seed + (1_000_003 if resume else 0))
    pool = MedleyPool(pieces, cfg, fonts, pool_size, mix=mix)
    for _ in range(pool_size):
        pool.refresh(rng)
    if not resume and init is None:  # feature standardisation from the first pool
        mel = torch.cat(
            [model.features.log_mel(torch.from_numpy(w[None]), center=False)[0] for w, _, _ in pool.items]
        )
        model.features.feature_mean.copy_(mel.mean(0))
        model.features.feature_std.copy_(mel.std(0).clamp_min(1e-3))
    val_rng = np.random.default_rng(12345)
    from notewave.symbolic.train import split_folder

    in_turn = [f for group in zip_longest(*(split_folder(Path(d))[1] for d in midi_dirs)) for f in group if f]
    val_src = [p for p in (load_piece(f, drums) for f in in_turn[:val_pieces]) if len(p)]
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
        return transcription_loss(forward(wav, center=False), labels, harmonic_negatives)

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        if not val_items:
            return {}
        losses = []
        for wav, roll, _ in val_items:
            logits = m(torch.from_numpy(wav[None]), center=False)
            labels = {h: torch.from_numpy(roll[h][None]) for h in HEADS}
            losses.append(float(transcription_loss(logits, labels)))
        return {"val_loss": float(np.mean(losses)), "val_onset_f1": onset_f1(m, val_items)}  # type: ignore[arg-type]

    tcfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup=min(100, steps // 10),
        weight_decay=0.01,
        eval_every=eval_every,
        save_every=eval_every,
        seed=seed,
        precision=precision,
    )
    result = Trainer(model, tcfg, run, batch_fn, loss_fn, eval_fn, dist_info=setup_distributed()).fit(resume)
    history = result["history"]
    summary = {
        "steps": result["steps"],
        "wall_s": round(time.perf_counter() - start_time, 1),
        "cpu_s": round(time.process_time() - start_cpu, 1),
        "precision": result["precision"],
        "best_val_loss": result["best_val_loss"],
        "final_val_onset_f1": history[-1].get("val_onset_f1") if history else None,
        "parameters": model.num_parameters(),
        "train_pieces": len(pieces),
        "val_pieces": len(val_items),
        "soundfonts": [str(f) for f in fonts],
        "holdout_soundfont": None if holdout_soundfont is None else str(holdout_soundfont),
        "augment": None if mix is None else asdict(mix),
        "init": None if init is None else str(init),
        "harmonic_negatives": harmonic_negatives,
        "history": history,
    }
    run.mkdir(parents=True, exist_ok=True)
    (run / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary

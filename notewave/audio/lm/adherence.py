"""Melody adherence by transcription: pitch-class onsets of generated audio against the melody's notes.

A second measure beside the chroma cosine of ``bench/melody_adherence.py`` that does not use
chroma: the audio is transcribed to notes by the shipped transcriber
(:func:`notewave.bridge.transcription.transcribe.transcribe`), and both note lists are folded into
one octave (every pitch mapped to its pitch class, C..B) before they are compared, so an octave
error or a voice in another register still counts and only the pitch classes and the timing matter.
Notes of one pitch class starting within :data:`MERGE_SECONDS` of each other are one note.

* **Onset F1** (precision, recall, F1): ``mir_eval.transcription.precision_recall_f1_overlap``
  (Raffel et al. 2014) with offsets ignored: an estimated note matches an unmatched reference note
  of the same pitch class whose onset lies within ``onset_tolerance`` seconds (50 ms as in the
  transcription literature; 100 ms is kinder to a model that is not sample-exact).
* **Frame pitch-class precision and recall**: at ``frame_rate`` frames per second, the pitch
  classes sounding in the estimate (a note sounds from its onset to its offset) against those
  sounding in the reference: precision = matched / estimated (frame, pitch class) pairs, recall =
  matched / reference pairs. Zero-length notes sound for one frame.

With no estimated notes every score is 0; with no reference notes they are NaN (nothing to follow).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
from symusic import Score

from notewave.core.midi import load_score
from notewave.errors import ConfigError

MERGE_SECONDS = 0.01  #: same pitch class, onsets this close: one note
FRAME_RATE = 100.0  #: frames per second of the frame-level scores
ONSET_TOLERANCES = (0.05, 0.1)  #: seconds
Notes: TypeAlias = "str | os.PathLike[str] | Score | np.ndarray"  #: a MIDI file, a Score or note rows


@dataclass(frozen=True)
class PitchClassScores:
    """Pitch-class scores of one estimate against one reference (see the module docstring); in [0, 1]."""

    onset_precision: float
    onset_recall: float
    onset_f1: float
    frame_precision: float
    frame_recall: float
    reference_notes: int  #: after folding and merging
    estimated_notes: int
    onset_tolerance: float  #: seconds


def pitch_class_notes(notes: Notes, end: float | None = None) -> np.ndarray:
    """Notes folded into one octave: float64 rows ``[onset_s, offset_s, pitch_class]``, sorted, merged.

    Args:
        notes: a MIDI file, a ``Score`` (non-drum tracks) or rows ``[n, >=3]`` of onset s, offset s,
            MIDI pitch.
        end: keep the notes starting before ``end`` seconds, offsets cut there (``None``: all).

    Raises:
        ConfigError: rows that are not finite ``[n, >=3]`` with offsets not before onsets.
        MidiError: a missing or unreadable MIDI file.
    """
    if isinstance(notes, str | os.PathLike):
        notes = load_score(notes)
    if isinstance(notes, Score):
        sec = notes.to("second")
        rows = np.array(
            [(n.time, n.end, n.pitch) for t in sec.tracks if not t.is_drum for n in t.notes], dtype=np.float64
        ).reshape(-1, 3)
    else:
        rows = np.asarray(notes, dtype=np.float64)
        rows = rows.reshape(0, 3) if rows.size == 0 else rows
    if rows.ndim != 2 or rows.shape[1] < 3 or not np.isfinite(rows).all() or (rows[:, 1] < rows[:, 0]).any():
        raise ConfigError(
            f"notes must be finite rows [onset_s, offset_s, pitch] with offset >= onset, {rows.shape}"
        )
    rows = np.column_stack([rows[:, :2], np.mod(np.round(rows[:, 2]), 12)])
    if end is not None:
        rows = rows[rows[:, 0] < end]
        rows[:, 1] = np.minimum(rows[:, 1], end)
    merged: list[list[float]] = []
    last: dict[float, list[float]] = {}
    for onset, offset, pc in rows[np.lexsort((rows[:, 0], rows[:, 2]))]:
        prev = last.get(pc)
        if prev is not None and onset - prev[0] <= MERGE_SECONDS:
            prev[1] = max(prev[1], offset)
        else:
            last[pc] = [onset, offset, pc]
            merged.append(last[pc])
    out = np.array(merged, dtype=np.float64).reshape(-1, 3)
    return out[np.lexsort((out[:, 2], out[:, 0]))]


def _roll(rows: np.ndarray, frames: int, frame_rate: float) -> np.ndarray:
    """bool ``[frames, 12]``: pitch classes sounding in each frame."""
    roll = np.zeros((frames, 12), dtype=bool)
    for onset, offset, pc in rows:
        a = min(frames - 1, int(math.floor(onset * frame_rate)))
        b = max(a + 1, min(frames, int(math.ceil(offset * frame_rate))))
        roll[a:b, int(pc)] = True
    return roll


def score_pitch_classes(
    reference: Notes, estimate: Notes, onset_tolerance: float = 0.05,
    end: float | None = None, frame_rate: float = FRAME_RATE,
) -> PitchClassScores:  # fmt: skip
    """Pitch-class onset and frame scores of ``estimate`` against ``reference`` (module docstring).

    Args:
        reference, estimate: MIDI files, Scores or note rows (see :func:`pitch_class_notes`).
        onset_tolerance: seconds (> 0).
        end: compare the first ``end`` seconds only (``None``: all of both).
        frame_rate: frames per second of the frame scores (> 0).

    Raises:
        ConfigError: bad note rows, or a tolerance or frame rate that is not positive.
    """
    import mir_eval

    if not (onset_tolerance > 0 and frame_rate > 0):
        raise ConfigError(f"onset_tolerance and frame_rate must be > 0, got {onset_tolerance}, {frame_rate}")
    ref, est = pitch_class_notes(reference, end), pitch_class_notes(estimate, end)
    counts = (len(ref), len(est), float(onset_tolerance))
    if len(ref) == 0:
        return PitchClassScores(*(math.nan,) * 5, *counts)
    if len(est) == 0:
        return PitchClassScores(*(0.0,) * 5, *counts)

    def hz(rows: np.ndarray) -> np.ndarray:
        return 440.0 * 2.0 ** ((rows[:, 2] + 60 - 69) / 12)  # pitch class c in the octave of middle C

    def intervals(rows: np.ndarray) -> np.ndarray:  # mir_eval refuses zero-length notes
        return np.column_stack([rows[:, 0], np.maximum(rows[:, 1], rows[:, 0] + 1e-3)])

    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
        intervals(ref), hz(ref), intervals(est), hz(est), onset_tolerance=onset_tolerance, offset_ratio=None
    )
    last = max(ref[:, 1].max(), est[:, 1].max()) if end is None else end
    frames = max(1, int(math.ceil(last * frame_rate)))
    ref_roll, est_roll = _roll(ref, frames, frame_rate), _roll(est, frames, frame_rate)
    hits = float((ref_roll & est_roll).sum())
    frame_p, frame_r = hits / max(1, int(est_roll.sum())), hits / max(1, int(ref_roll.sum()))
    return PitchClassScores(float(p), float(r), float(f), frame_p, frame_r, *counts)


def transcription_adherence(
    audio: Any, sample_rate: int, reference: Notes, seconds: float | None = None,
    onset_tolerances: tuple[float, ...] = ONSET_TOLERANCES, checkpoint: str | os.PathLike[str] | None = None,
) -> dict[float, PitchClassScores]:  # fmt: skip
    """Transcribe ``audio`` and score it against the melody's notes at each onset tolerance.

    Args:
        audio: float audio ``[channels, samples]`` or ``[samples]`` at ``sample_rate`` Hz, or a file.
        reference: the melody's notes: the MIDI file (or ``Score``) the melody came from, or note rows.
        seconds: compare the first ``seconds`` (default: the audio's length for an array, else all).
        checkpoint: transcriber checkpoint (default: the shipped one).

    Returns:
        ``{onset_tolerance: PitchClassScores}``.

    Raises:
        AudioError: unreadable, empty or NaN audio. CheckpointError: a broken transcriber.
    """
    import warnings

    from notewave.bridge.transcription.transcribe import transcribe

    if seconds is None and isinstance(audio, np.ndarray):
        seconds = audio.shape[-1] / float(sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no notes found" scores 0 instead
        estimate = transcribe(audio, None if not isinstance(audio, np.ndarray) else sample_rate, checkpoint)
    return {tol: score_pitch_classes(reference, estimate, tol, seconds) for tol in onset_tolerances}

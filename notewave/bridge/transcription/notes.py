"""Onset/frame activations -> notes -> a one-track MIDI ``Score``: the note decoding of the transcriber.

Note decoding (Hawthorne et al. 2018, "Onsets and Frames", ISMIR): a note of key ``k`` starts
at the peak frame of each run of onset probabilities >= ``onset_threshold`` and lasts while the
frame probability stays >= ``frame_threshold`` (at least one frame, and never past the next
onset of the same key); its velocity is the velocity head's output at the onset frame.

Output format: 480 ticks per quarter note, one tempo of 120 BPM and a 4/4 time signature at
tick 0, so one second is exactly 960 ticks (tick = round(seconds * 960)), and one track named
``Transcription`` with General MIDI program 0 (piano).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from symusic import Note, Score, Tempo, TimeSignature, Track

from notewave.errors import ConfigError

TICKS_PER_QUARTER = 480
TEMPO_BPM = 120.0
TICKS_PER_SECOND = TICKS_PER_QUARTER * TEMPO_BPM / 60.0  # 960
TRACK_NAME = "Transcription"
PROGRAM = 0
DEFAULT_VELOCITY = 80


@dataclass(frozen=True)
class NoteEvent:
    """One decoded note: ``start``/``end`` in seconds, MIDI ``pitch`` and ``velocity`` (1..127)."""

    start: float
    end: float
    pitch: int
    velocity: int


def _refine(curve: np.ndarray, t: int) -> float:
    """Sub-frame peak position of ``curve`` near ``t`` by a parabola through 3 points (|shift| <= 0.5)."""
    if t <= 0 or t >= len(curve) - 1:
        return float(t)
    a, b, c = float(curve[t - 1]), float(curve[t]), float(curve[t + 1])
    denom = a - 2 * b + c
    return t + (float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5)) if denom < 0 else 0.0)


def decode_notes(
    onset: np.ndarray,
    frame: np.ndarray,
    velocity: np.ndarray | None = None,
    onset_threshold: float = 0.5,
    frame_threshold: float = 0.5,
    frames_per_second: float = 31.25,
    min_midi: int = 21,
) -> list[NoteEvent]:
    """Turn onset/frame/velocity activations into notes (see the module docstring).

    Args:
        onset, frame: probabilities ``[frames, keys]`` (key ``k`` is MIDI ``min_midi + k``).
        velocity: ``[frames, keys]`` velocity / 127 in [0, 1], or ``None`` (velocity 80).
        onset_threshold, frame_threshold: probability thresholds in (0, 1).
        frames_per_second: frame rate; frame ``t`` is centred at ``t / frames_per_second`` seconds.

    Returns:
        Notes sorted by start time then pitch; ``end - start >= 1 / frames_per_second``.

    Raises:
        ConfigError: mismatching shapes or thresholds outside (0, 1).
    """
    onset, frame = np.asarray(onset, dtype=np.float32), np.asarray(frame, dtype=np.float32)
    shapes = {onset.shape, frame.shape} | ({np.shape(velocity)} if velocity is not None else set())
    if onset.ndim != 2 or len(shapes) != 1:
        raise ConfigError(f"activations must share one [frames, keys] shape, got {sorted(shapes)}")
    if not (0 < onset_threshold < 1 and 0 < frame_threshold < 1):
        raise ConfigError(f"thresholds must lie in (0, 1), got {onset_threshold}, {frame_threshold}")
    n_frames, notes = onset.shape[0], []
    vel_prob = np.full(onset.shape, DEFAULT_VELOCITY / 127) if velocity is None else np.asarray(velocity)
    pad = np.zeros((1, onset.shape[1]), bool)
    edges = np.diff(np.vstack([pad, onset >= onset_threshold, pad]).astype(np.int8), axis=0)
    for key in np.flatnonzero((edges == 1).any(axis=0)):
        starts, stops = np.flatnonzero(edges[:, key] == 1), np.flatnonzero(edges[:, key] == -1)
        peaks = [s + int(np.argmax(onset[s:e, key])) for s, e in zip(starts, stops)] + [n_frames]
        off = np.append(np.flatnonzero(frame[:, key] < frame_threshold), n_frames)
        for t0, t_next in zip(peaks[:-1], peaks[1:]):
            end = max(t0 + 1, min(int(off[np.searchsorted(off, t0 + 1)]), t_next))
            vel = int(np.clip(round(float(vel_prob[t0, key]) * 127), 1, 127))
            start = max(0.0, _refine(onset[:, key], t0)) / frames_per_second
            notes.append(NoteEvent(start, end / frames_per_second, int(min_midi + key), vel))
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def notes_to_score(notes: list[NoteEvent], program: int = PROGRAM, name: str = TRACK_NAME) -> Score:
    """Notes in seconds -> one-track ``Score`` at 120 BPM, 480 ticks per quarter (960 ticks per second)."""
    score = Score(TICKS_PER_QUARTER)
    score.tempos.append(Tempo(0, qpm=TEMPO_BPM))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    track = Track(name=name, program=program, is_drum=False)
    for n in notes:
        start = int(round(n.start * TICKS_PER_SECOND))
        end = max(start + 1, int(round(n.end * TICKS_PER_SECOND)))
        track.notes.append(Note(start, end - start, n.pitch, n.velocity))
    score.tracks.append(track)
    return score

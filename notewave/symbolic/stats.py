"""Musical statistics of note sequences, for comparing generated music with real music.

Pitch-class entropy, scale consistency and polyphony follow the definitions used in
music generation evaluation (e.g. Mogren 2016, C-RNN-GAN; Dong et al. 2018, MuseGAN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from symusic import Note, Score

MAJOR = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)


def pitched_notes(score: Score, start: int = 0, end: int | None = None) -> list[Note]:
    """Non-drum notes with onset in ``[start, end)`` ticks."""
    return [
        n
        for t in score.tracks
        if not t.is_drum
        for n in t.notes
        if n.time >= start and (end is None or n.time < end)
    ]


def pitch_class_entropy(notes: Sequence[Note]) -> float:
    """Shannon entropy (bits, 0..log2(12)=3.58) of the pitch-class histogram; NaN without notes."""
    if not notes:
        return float("nan")
    counts = np.bincount([n.pitch % 12 for n in notes], minlength=12).astype(float)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def scale_consistency(notes: Sequence[Note]) -> float:
    """Largest share of notes inside one of the 24 major / harmonic-minor scales (0..1); NaN without notes."""
    if not notes:
        return float("nan")
    pcs = np.bincount([n.pitch % 12 for n in notes], minlength=12)
    best = 0
    for tonic in range(12):
        for scale in (MAJOR, HARMONIC_MINOR):
            best = max(best, int(sum(pcs[(tonic + d) % 12] for d in scale)))
    return best / len(notes)


def polyphony(notes: Sequence[Note], step: int) -> float:
    """Mean number of notes sounding per grid step of ``step`` ticks, over steps where any sounds."""
    if not notes:
        return float("nan")
    start = min(n.time for n in notes)
    end = max(n.time + n.duration for n in notes)
    frames = np.zeros(math.ceil((end - start) / step) + 1, dtype=int)
    for n in notes:
        a = (n.time - start) // step
        b = max(a + 1, math.ceil((n.time + n.duration - start) / step))
        frames[a:b] += 1
    sounding = frames[frames > 0]
    return float(sounding.mean()) if len(sounding) else float("nan")


def note_statistics(
    score: Score, start: int = 0, end: int | None = None, bars: float | None = None
) -> dict[str, float]:
    """All statistics of the pitched notes with onsets in ``[start, end)`` ticks.

    Returns:
        ``pitch_class_entropy`` (bits), ``scale_consistency`` (0..1), ``polyphony`` (notes
        per sounding 16th note) and ``notes_per_bar`` (when ``bars`` is given).
    """
    notes = pitched_notes(score, start, end)
    stats = {
        "pitch_class_entropy": pitch_class_entropy(notes),
        "scale_consistency": scale_consistency(notes),
        "polyphony": polyphony(notes, max(1, score.ticks_per_quarter // 4)),
    }
    if bars:
        stats["notes_per_bar"] = len(notes) / bars
    return stats

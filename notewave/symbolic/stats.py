"""Musical statistics of note sequences, for comparing generated music with real music.

Pitch-class entropy and polyphony follow the definitions used in music generation
evaluation (e.g. Mogren 2016, C-RNN-GAN; Dong et al. 2018, MuseGAN). The measures of the
composer's edits built on them are in :mod:`notewave.symbolic.quality`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from symusic import Note, Score


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

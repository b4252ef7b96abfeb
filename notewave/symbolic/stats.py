"""Musical statistics of note sequences, for comparing generated music with real music.

Pitch-class entropy and polyphony follow the definitions used in music generation
evaluation (e.g. Mogren 2016, C-RNN-GAN; Dong et al. 2018, MuseGAN); keys are estimated with
the Krumhansl-Kessler profiles (Krumhansl 1990). The measures of the
composer's edits built on them are in :mod:`notewave.symbolic.quality`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from symusic import Note, Score

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


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


def _standardised(rows: np.ndarray) -> np.ndarray:
    centred = rows - rows.mean(axis=-1, keepdims=True)
    return centred / np.linalg.norm(centred, axis=-1, keepdims=True)


# The 24 key profiles (12 major, then 12 minor; tonic C, C#, ...), standardised for Pearson r.
_KEY_PROFILES = _standardised(
    np.array([np.roll(profile, tonic) for profile in (KK_MAJOR, KK_MINOR) for tonic in range(12)])
)


def estimate_key(histogram: np.ndarray) -> str | None:
    """Krumhansl-Kessler key of a pitch-class histogram: the one of the 24 major/minor profiles
    with the highest Pearson correlation, as e.g. ``"Eb major"``; None for a flat (e.g. empty)
    histogram."""
    histogram = np.asarray(histogram, dtype=float)
    if np.ptp(histogram) == 0:
        return None
    best = int(np.argmax(_KEY_PROFILES @ _standardised(histogram)))
    return f"{PITCH_NAMES[best % 12]} {'major' if best < 12 else 'minor'}"


def length_shift(new: Sequence[np.ndarray], around: Sequence[np.ndarray]) -> float:
    """How far new notes' lengths are from their track's own, in octaves: the mean over tracks of
    ``|log2(median new length / median length around)|`` (``new[i]``, ``around[i]``: the lengths
    of track i's notes, any one unit), over the tracks with notes in both; NaN for none."""
    shifts = [
        abs(math.log2(float(np.median(a)) / float(np.median(b))))
        for a, b in zip(new, around)
        if len(a) and len(b) and np.median(a) > 0 and np.median(b) > 0
    ]
    return float(np.mean(shifts)) if shifts else float("nan")

"""Find music21's Bach chorales in the JSB Chorales dataset, so that its splits are respected.

The JSB Chorales (:mod:`notewave.symbolic.sources.jsb`) were drawn from the same
chorales as music21's ``bach`` folder. A music21 chorale that is a JSB valid or test
chorale must not be trained on, so :mod:`notewave.symbolic.sources.music21` puts it in
the JSB chorale's split.

Matching compares the outer voices (every candidate track of :func:`outer_voices`). A
voice becomes its pitch classes with repeated pitch classes merged (the 16th-note frames
of JSB cannot tell a held note from a repeated one, and octave jumps of the bass are
ignored), then its intervals mod 12 (transposition does not matter), then the set of
its runs of :data:`NGRAM` intervals. Two voices agree by the share of the smaller set
found in the other (:func:`containment`), which tolerates a few changed notes, fermatas
and written-out or missing repeats. A music21 chorale is the same chorale as the JSB
chorale that gives the highest mean of soprano and bass agreement when that mean is at
least :data:`MATCH_MEAN` and each voice agrees at least :data:`MATCH_VOICE` (of the 408
chorales exported, 393 match; they cover all 77 JSB test chorales, 75 of the 76 valid
and 224 of the 229 train ones). A soprano agreement of at least :data:`MELODY_MATCH`
without that is the same hymn tune in another harmonisation: it is reported, not moved
(JSB's own splits hold such pairs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import symusic

NGRAM = 5
TIMPANI = 47  # GM program: a low part that is never the bass line
MATCH_MEAN = 0.7
MATCH_VOICE = 0.5
MELODY_MATCH = 0.85
# When two JSB chorales score the same, prefer the held-out split.
_SPLIT_RANK = {"test": 0, "valid": 1, "train": 2}

Profile = frozenset[tuple[int, ...]]


@dataclass(frozen=True)
class JsbReference:
    """The outer-voice profiles of one JSB chorale (``split``, position ``index`` in it)."""

    split: str
    index: int
    soprano: Profile
    bass: Profile


def voice_profile(pitches: Sequence[int]) -> Profile:
    """The set of :data:`NGRAM`-interval runs (mod 12) of a voice's merged pitch-class sequence."""
    classes: list[int] = []
    for pitch in pitches:
        if not classes or classes[-1] != pitch % 12:
            classes.append(pitch % 12)
    steps = [(b - a) % 12 for a, b in zip(classes, classes[1:], strict=False)]
    return frozenset(tuple(steps[i : i + NGRAM]) for i in range(len(steps) - NGRAM + 1))


def containment(a: Profile, b: Profile) -> float:
    """``|a & b| / min(|a|, |b|)``: 1.0 when the smaller profile lies in the larger; 0.0 if one is empty."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def jsb_references(data: Mapping[str, Sequence[Sequence[Sequence[int]]]]) -> list[JsbReference]:
    """Profiles of every JSB chorale (``{split: [chorale]}``, frames ``[S, A, T, B]``, -1 silent)."""
    refs = []
    for split, chorales in data.items():
        for index, frames in enumerate(chorales):
            soprano = [frame[0] for frame in frames if frame[0] >= 0]
            bass = [frame[3] for frame in frames if frame[3] >= 0]
            refs.append(JsbReference(split, index, voice_profile(soprano), voice_profile(bass)))
    return refs


def _line(track: symusic.core.TrackTick, top: bool) -> list[int]:
    by_onset: dict[int, int] = {}
    for note in track.notes:
        held = by_onset.get(note.time)
        if held is None or (note.pitch > held if top else note.pitch < held):
            by_onset[note.time] = note.pitch
    return [by_onset[time] for time in sorted(by_onset)]


def outer_voices(score: symusic.Score) -> tuple[list[list[int]], list[list[int]]]:
    """Candidate soprano and bass pitch sequences of a chorale (highest/lowest note per onset).

    Soprano candidates: every track whose name starts with ``Sop``, and the track with the
    highest mean pitch; bass candidates: every track whose name starts with ``Bass`` or
    mentions ``continuo``/``organ``, and the track with the lowest mean pitch (timpani,
    GM program 47, never count). Empty lists for a score without notes.
    """
    tracks = [t for t in score.tracks if len(t.notes) > 0 and not t.is_drum and int(t.program) != TIMPANI]
    if not tracks:
        return [], []

    def mean(track: Any) -> float:
        return sum(note.pitch for note in track.notes) / len(track.notes)

    def word(track: Any) -> str:
        return (track.name.lower().split() or [""])[0]

    sopranos = [t for t in tracks if word(t).startswith("sop")] + [max(tracks, key=mean)]
    basses = [t for t in tracks if word(t).startswith("bass") or re.search("continuo|organ", t.name.lower())]
    basses.append(min(tracks, key=mean))
    unique = {id(t): t for t in sopranos}, {id(t): t for t in basses}
    return [_line(t, top=True) for t in unique[0].values()], [_line(t, top=False) for t in unique[1].values()]


def match_jsb(score: symusic.Score, refs: Sequence[JsbReference]) -> dict[str, Any] | None:
    """The JSB chorale that ``score`` is, or whose tune it harmonises; None when neither.

    Returns ``{"kind": "chorale" | "melody", "split", "index", "soprano", "bass"}``
    (agreements rounded to 3 decimals); see the module docstring for the rule.
    """
    soprano_lines, bass_lines = outer_voices(score)
    sopranos = [voice_profile(line) for line in soprano_lines]
    basses = [voice_profile(line) for line in bass_lines]
    best: tuple[float, int, int, float, float, JsbReference] | None = None
    best_melody: tuple[float, int, int, JsbReference] | None = None
    for ref in refs:
        s = max((containment(profile, ref.soprano) for profile in sopranos), default=0.0)
        b = max((containment(profile, ref.bass) for profile in basses), default=0.0)
        rank = _SPLIT_RANK.get(ref.split, 3)
        if s >= MATCH_VOICE and b >= MATCH_VOICE and (s + b) / 2 >= MATCH_MEAN:
            candidate = ((s + b) / 2, -rank, -ref.index, s, b, ref)
            best = candidate if best is None or candidate[:3] > best[:3] else best
        if s >= MELODY_MATCH:
            melody = (s, -rank, -ref.index, ref)
            best_melody = melody if best_melody is None or melody[:3] > best_melody[:3] else best_melody
    if best is not None:
        s, b, ref = best[3], best[4], best[5]
        return {
            "kind": "chorale",
            "split": ref.split,
            "index": ref.index,
            "soprano": round(s, 3),
            "bass": round(b, 3),
        }
    if best_melody is not None:
        ref = best_melody[3]
        return {
            "kind": "melody",
            "split": ref.split,
            "index": ref.index,
            "soprano": round(best_melody[0], 3),
            "bass": round(max((containment(profile, ref.bass) for profile in basses), default=0.0), 3),
        }
    return None

"""Reading and writing MIDI files as symusic ``Score`` objects, with clear errors, and the bar grid."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from symusic import Score
from symusic.core import ScoreTick

from notewave.core.io import atomic_path
from notewave.errors import MidiError

MidiLike = Union[str, "os.PathLike[str]", bytes, ScoreTick]


def midi_name(midi: object) -> str:
    """How messages name a MIDI input: the path of a file, else "the given Score" / "the given MIDI bytes"."""
    if isinstance(midi, Score):
        return "the given Score"
    if isinstance(midi, bytes | bytearray):
        return "the given MIDI bytes"
    if isinstance(midi, str | os.PathLike):
        return str(Path(midi))
    return f"the given {type(midi).__name__}"


def load_score(midi: MidiLike, *, allow_drums_only: bool = True) -> Score:
    """Load a MIDI file (path or bytes) or pass a ``Score`` through, checking it has notes.

    Returns:
        A symusic ``Score`` with ticks as time unit.

    Raises:
        MidiError: the file is missing, not a MIDI file, corrupt or has no notes, or (when
            ``allow_drums_only`` is false) has only drum notes. The message names the file.
    """
    name = midi_name(midi)
    if isinstance(midi, Score):
        score = midi
    elif isinstance(midi, bytes | bytearray):
        try:
            score = Score.from_midi(bytes(midi))
        except Exception as exc:
            raise MidiError(f"{name} are not a readable MIDI file: {exc}") from exc
    elif isinstance(midi, str | os.PathLike):
        path = Path(midi)
        if not path.is_file():
            raise MidiError(f"MIDI file not found: {path}")
        if path.stat().st_size == 0:
            raise MidiError(f"MIDI file is empty: {path}")
        try:
            # From bytes: symusic refuses paths without a MIDI file extension.
            score = Score.from_midi(path.read_bytes())
        except Exception as exc:
            raise MidiError(f"{path} is not a readable MIDI file: {exc}") from exc
    else:
        raise MidiError(f"expected a MIDI path, MIDI bytes or a symusic Score, not {type(midi).__name__}")
    if len(score.tracks) == 0 or score.note_num() == 0:  # symusic drops tracks without notes on reading
        raise MidiError(f"{name} has no notes")
    if not allow_drums_only and all(t.is_drum for t in score.tracks if t.notes):
        raise MidiError(f"{name} holds only drum notes; give a prompt with at least one pitched track")
    return score


END_MARKER = "End"


def end_at(score: Score, tick: int) -> Score:
    """Make ``score`` last until ``tick`` (its final bar line) even when its last bars are rests.

    Puts a marker :data:`END_MARKER` at ``tick`` (replacing an earlier one): ``score.end()`` and
    :func:`bar_grid` then count the bars up to it, and a saved MIDI file's End of Track falls on
    it, so DAWs show the rests. Returns ``score`` (changed in place).
    """
    from symusic import TextMeta

    score.markers.filter(lambda m: m.text != END_MARKER, inplace=True)
    score.markers.append(TextMeta(int(tick), END_MARKER))
    return score


def save_score(score: Score, path: str | os.PathLike[str]) -> Path:
    """Write ``score`` to the MIDI file ``path`` atomically; returns the path."""
    target = Path(path)
    with atomic_path(target) as tmp:
        score.dump_midi(str(tmp))
    return target


@dataclass
class BarGrid:
    """The bar lines of a score: ``lines`` int64 ``[B + 1]`` (ticks of bars 0..B, the last one
    closing bar B-1) and ``meters`` (``(numerator, denominator)`` of each bar, ``[B]``).

    A bar takes the meter in force at its first tick (4/4 before the first time signature
    and in a score without one, the MIDI default); a time signature that falls inside a bar
    takes effect at the next bar line.
    """

    lines: np.ndarray
    meters: list[tuple[int, int]]
    ticks_per_quarter: int

    @property
    def bars(self) -> int:
        """Number of bars."""
        return len(self.meters)

    def bar_length(self, bar: int) -> int:
        """Length of ``bar`` in ticks."""
        return int(self.lines[bar + 1] - self.lines[bar])

    def extended(self, bars: int) -> BarGrid:
        """The grid with ``bars`` more bars in the last meter (or 4/4 for an empty grid)."""
        meter = self.meters[-1] if self.meters else (4, 4)
        step = self.ticks_per_quarter * 4 * meter[0] // meter[1]
        extra = self.lines[-1] + step * np.arange(1, bars + 1, dtype=np.int64)
        return BarGrid(
            np.concatenate([self.lines, extra]), self.meters + [meter] * bars, self.ticks_per_quarter
        )

    def bar_of(self, ticks: np.ndarray) -> np.ndarray:
        """Bar index (int64) of each tick in ``ticks`` (ticks past the last line count in the last bar)."""
        index = np.searchsorted(self.lines, np.asarray(ticks), side="right") - 1
        return np.clip(index, 0, max(self.bars - 1, 0))


def bar_grid(score: Score, until: int | None = None) -> BarGrid:
    """Bar lines of ``score`` from tick 0 up to the first bar line at or after ``until``
    (default: the score's last note-off), at least one bar.

    A release less than a 32nd note past a bar line does not open a new bar.
    """
    tpq = score.ticks_per_quarter
    end = score.end() - tpq // 8 if until is None else until
    changes = sorted((int(ts.time), int(ts.numerator), int(ts.denominator)) for ts in score.time_signatures)
    lines, meters = [0], []
    meter, index = (4, 4), 0
    while not meters or lines[-1] < end:
        while index < len(changes) and changes[index][0] <= lines[-1]:
            meter = changes[index][1:]
            index += 1
        meters.append(meter)
        lines.append(lines[-1] + max(1, tpq * 4 * meter[0] // max(meter[1], 1)))
    return BarGrid(np.asarray(lines, dtype=np.int64), meters, tpq)

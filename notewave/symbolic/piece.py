"""A score as quantized notes on its bar grid: the tokenizer's view of a piece.

:class:`Piece` holds, for every note, its track, bar, position in the bar (12 per quarter),
pitch, velocity bin and duration bin (:mod:`notewave.symbolic.vocab`), plus the meter and
tempo of every bar and the GM program of every track. It is built from a ``symusic.Score``
(:func:`piece_from_score`) and its notes are placed back onto any bar grid in ticks
(:func:`place_notes`), which is how generated bars land in the prompt's own ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from symusic import Note, Score

from notewave.core.midi import BarGrid, bar_grid
from notewave.errors import TokenizerError
from notewave.symbolic.vocab import (
    DRUMS,
    DURATIONS,
    MAX_TRACKS,
    PITCH_RANGE,
    POSITIONS_PER_QUARTER,
    bar_positions,
    bin_velocity,
    duration_bin,
    meter_parts,
    supported_meters,
    velocity_bin,
)

# Columns of Piece.notes.
TRACK, BAR, POS, PITCH, VEL, DUR = range(6)


@dataclass
class Piece:
    """Quantized notes of a piece.

    Attributes:
        programs: GM program of each track (``-1`` for drums), ``[T]``, at most 16 tracks.
        meters: ``(numerator, denominator)`` of each bar, ``[B]``.
        tempos: tempo in quarter notes per minute at each bar line, float ``[B]``.
        notes: int32 ``[N, 6]``: track, bar, position (0 .. bar length - 1, 12 per quarter),
            pitch (0..127), velocity bin (0..15), duration bin (index into
            :data:`~notewave.symbolic.vocab.DURATIONS`); sorted by bar, track, position, pitch,
            with no two notes of one track at the same position and pitch.
        names: track names (kept for people; not tokenized).
    """

    programs: list[int]
    meters: list[tuple[int, int]]
    tempos: np.ndarray
    notes: np.ndarray
    names: list[str] = field(default_factory=list)

    @property
    def bars(self) -> int:
        return len(self.meters)

    @property
    def tracks(self) -> int:
        return len(self.programs)

    def bar_notes(self, bar: int) -> np.ndarray:
        """Rows of :attr:`notes` in ``bar`` (a view; sorted by track, position, pitch)."""
        starts = np.searchsorted(self.notes[:, BAR], [bar, bar + 1])
        return self.notes[starts[0] : starts[1]]

    def bar_offsets(self) -> np.ndarray:
        """int64 ``[B + 1]``: row index in :attr:`notes` where each bar starts (and the end)."""
        return np.searchsorted(self.notes[:, BAR], np.arange(self.bars + 1))

    def transposed(self, semitones: int) -> Piece:
        """Copy with every pitched (non-drum) note moved by ``semitones`` (no range check)."""
        notes = self.notes.copy()
        pitched = np.asarray([p != DRUMS for p in self.programs] or [False])[notes[:, TRACK]]
        notes[pitched, PITCH] += semitones
        return Piece(list(self.programs), list(self.meters), self.tempos.copy(), notes, list(self.names))

    def shifts_in_range(self, shifts: list[int] | range) -> list[int]:
        """The transpositions that keep every pitched note inside :data:`PITCH_RANGE`."""
        pitched = np.asarray([p != DRUMS for p in self.programs] or [False])[self.notes[:, TRACK]]
        pitches = self.notes[pitched, PITCH]
        if not len(pitches):
            return [0]
        low, high = int(pitches.min()), int(pitches.max())
        return [s for s in shifts if low + s >= PITCH_RANGE[0] and high + s <= PITCH_RANGE[1]]


def token_grid(grid: BarGrid) -> tuple[BarGrid, np.ndarray]:
    """``grid`` as the bars the model writes, and where each of its bar lines falls among them.

    A bar whose meter has a token (or a twin of the same length) stays as it is; a longer or odd
    one is split into the bars of :func:`~notewave.symbolic.vocab.meter_parts` (10/4 as two of
    5/4, 11/8 as 6/8 + 5/8); a lone bar no token bars write (an eighth-note pickup exported as a
    1/8 bar by MuseScore) joins the next bar (the last bar: the one before) and the two are
    written together (1/8 + 6/8 as one 7/8). Returns the token grid and int64 ``[B + 1]``: the
    token bar holding the start of each bar of ``grid`` (the last entry: the token bar count).

    Raises:
        TokenizerError: a meter neither written in parts nor joined to a neighbour (the message
            names it and its tick).
    """
    tpq, bars = grid.ticks_per_quarter, grid.bars
    short = [meter_parts(*meter) is None for meter in grid.meters]
    groups: list[list[int]] = []  # runs of bars written together
    for bar in range(bars):
        if groups and groups[-1] == [bar - 1] and short[bar - 1] and not short[bar]:
            groups[-1].append(bar)  # a lone short bar takes the next one along
        else:
            groups.append([bar])
    if len(groups) > 1 and groups[-1] == [bars - 1] and short[-1] and not short[groups[-2][-1]]:
        last = groups.pop()
        groups[-1] += last  # a short last bar joins the one before
    lines, meters = [int(grid.lines[0])], []
    for group in groups:
        end = int(grid.lines[group[-1] + 1])
        parts = _parts_of_span(grid, group)
        if parts is None:
            bad = next((b for b in group if meter_parts(*grid.meters[b]) is None), group[0])
            (n, d), tick = grid.meters[bad], int(grid.lines[bad])
            raise TokenizerError(
                f"time signature {n}/{d} (at tick {tick}) is not one the tokenizer knows; "
                + supported_meters()
            )
        for part in parts[:-1]:
            lines.append(lines[-1] + tpq * 4 * part[0] // part[1])
        lines.append(end)  # the last part ends on the bar line itself
        meters += parts
    out = BarGrid(np.asarray(lines, dtype=np.int64), meters, tpq)
    starts = np.searchsorted(out.lines, grid.lines, side="right") - 1
    starts[-1] = out.bars
    return out, starts.astype(np.int64)


def _parts_of_span(grid: BarGrid, group: list[int]) -> tuple[tuple[int, int], ...] | None:
    """:func:`meter_parts` of one bar, or of the meter as long as a run of bars together."""
    if len(group) == 1:
        return meter_parts(*grid.meters[group[0]])
    if any((n * 4 * POSITIONS_PER_QUARTER) % d for n, d in (grid.meters[b] for b in group)):
        return None  # off the 12-per-quarter grid (3/32)
    denominator = max(d for _, d in (grid.meters[b] for b in group))
    length = sum(bar_positions(*grid.meters[b]) for b in group)
    numerator, rest = divmod(length * denominator, 4 * POSITIONS_PER_QUARTER)
    return None if rest else meter_parts(numerator, denominator)


def tempo_per_bar(score: Score, grid: BarGrid) -> np.ndarray:
    """Tempo (quarter notes per minute) in force at each bar line, float64 ``[B]`` (120 by default)."""
    tempos = sorted((int(t.time), float(t.qpm)) for t in score.tempos)
    times = np.asarray([t for t, _ in tempos] or [0])
    values = np.asarray([q for _, q in tempos] or [120.0])
    index = np.searchsorted(times, grid.lines[:-1], side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], 120.0)


def piece_from_score(
    score: Score, name: str = "the score", grid: BarGrid | None = None, keep_tracks: str = "error"
) -> Piece:
    """Quantize ``score`` onto its bar grid (12 positions per quarter).

    Pitched notes outside :data:`PITCH_RANGE` are dropped; an onset rounding onto the next
    bar line moves to that bar; notes of one track at the same position and pitch are
    merged (the longest kept).

    Args:
        score: the piece (tracks without notes are ignored).
        name: how messages name it.
        grid: bar grid to use (default: the :func:`token_grid` of the score's
            :func:`~notewave.core.midi.bar_grid`: a bar whose meter has no token split into the
            bars it is written in).
        keep_tracks: ``"error"`` raises when the score has more than 16 tracks with notes;
            ``"largest"`` keeps the 16 with the most notes (in their order).

    Raises:
        TokenizerError: a meter no token bars can write (:func:`token_grid`), or more than 16
            tracks (``keep_tracks="error"``).
    """
    if grid is None:
        try:
            grid = token_grid(bar_grid(score))[0]
        except TokenizerError as exc:
            raise TokenizerError(f"{name}: {exc}") from None
    tracks = [t for t in score.tracks if len(t.notes)]
    if len(tracks) > MAX_TRACKS:
        if keep_tracks != "largest":
            raise TokenizerError(
                f"{name} has {len(tracks)} tracks with notes; the token format holds at most {MAX_TRACKS}"
            )
        largest = sorted(range(len(tracks)), key=lambda i: -len(tracks[i].notes))[:MAX_TRACKS]
        tracks = [tracks[i] for i in sorted(largest)]
    tpq = score.ticks_per_quarter
    lengths = np.asarray([bar_positions(n, d) for n, d in grid.meters])
    rows = []
    for index, track in enumerate(tracks):
        arrays = track.notes.numpy()
        time, duration = arrays["time"].astype(np.int64), arrays["duration"].astype(np.int64)
        pitch, velocity = arrays["pitch"].astype(np.int64), arrays["velocity"].astype(np.int64)
        keep = np.ones(len(time), bool)
        if not track.is_drum:
            keep = (pitch >= PITCH_RANGE[0]) & (pitch <= PITCH_RANGE[1])
        keep &= time >= 0
        time, duration, pitch, velocity = time[keep], duration[keep], pitch[keep], velocity[keep]
        bar = grid.bar_of(time)
        pos = np.rint((time - grid.lines[bar]) * POSITIONS_PER_QUARTER / tpq).astype(np.int64)
        moved = (pos >= lengths[bar]) & (bar + 1 < grid.bars)
        bar = np.where(moved, bar + 1, bar)
        pos = np.where(moved, 0, np.minimum(pos, lengths[bar] - 1))
        dur = np.maximum(1, np.rint(duration * POSITIONS_PER_QUARTER / tpq).astype(np.int64))
        rows.append(
            np.stack(
                [np.full(len(bar), index), bar, pos, pitch, velocity_bin(velocity), duration_bin(dur)], axis=1
            )
        )
    notes = np.concatenate(rows).astype(np.int32) if rows else np.zeros((0, 6), np.int32)
    # Sort by bar, track, position, pitch, then longest first so that unique() keeps the longest.
    order = np.lexsort((-notes[:, DUR], notes[:, PITCH], notes[:, POS], notes[:, TRACK], notes[:, BAR]))
    notes = notes[order]
    if len(notes):
        key = notes[:, :4]
        first = np.ones(len(notes), bool)
        first[1:] = np.any(key[1:] != key[:-1], axis=1)
        notes = notes[first]
    programs = [DRUMS if t.is_drum else int(t.program) for t in tracks]
    return Piece(
        programs, list(grid.meters), tempo_per_bar(score, grid), notes, [str(t.name) for t in tracks]
    )


def place_notes(notes: np.ndarray, grid: BarGrid, bar_offset: int = 0) -> dict[int, list[Note]]:
    """symusic ``Note``s of quantized ``notes`` (rows as :attr:`Piece.notes`) on ``grid`` in its ticks,
    grouped by track; note bar ``b`` lands in grid bar ``b + bar_offset``.

    A note is cut at the grid's last bar line so that nothing sounds past the piece's end.

    Raises:
        TokenizerError: a note in a bar the grid does not hold.
    """
    out: dict[int, list[Note]] = {}
    if not len(notes):
        return out
    bars = notes[:, BAR].astype(np.int64) + bar_offset
    if bars.min() < 0 or bars.max() >= grid.bars:
        raise TokenizerError(f"notes in bars {bars.min()}..{bars.max()} outside a grid of {grid.bars} bars")
    scale = grid.ticks_per_quarter / POSITIONS_PER_QUARTER
    starts = grid.lines[bars] + np.rint(notes[:, POS] * scale).astype(np.int64)
    lengths = np.rint(np.asarray(DURATIONS)[notes[:, DUR]] * scale).astype(np.int64)
    ends = np.minimum(starts + np.maximum(lengths, 1), grid.lines[-1])
    for row, start, end in zip(notes, starts, ends, strict=True):
        if end <= start:
            continue
        note = Note(int(start), int(end - start), int(row[PITCH]), bin_velocity(row[VEL]))
        out.setdefault(int(row[TRACK]), []).append(note)
    return out

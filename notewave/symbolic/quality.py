"""Measured quality of a MIDI composer's edits: continuations, infills and accompaniments.

Every metric works on symusic ``Score`` objects (ticks) and on bar indices of the score's
own bar grid: bar ``b`` spans ``[line[b], line[b + 1])`` ticks, where the bar lines start at
tick 0 and each bar is as long as the time signature in force at its bar line says (4/4
when the score has none; see :func:`notewave.core.midi.bar_grid`). A pickup
(anacrusis) at tick 0 is not detected: pad it to a full bar first. A span ``[first_bar,
last_bar)`` holds the bars ``first_bar .. last_bar - 1``; a note belongs to the bar holding
its onset.

A continuation or infill is scored against its *context*, the last ``context_bars`` (4)
prompt bars before the span (an infill also the ``context_after`` bars after it: its prompt is
the music on both sides), and optionally against the real held-out bars of the same
piece (``reference``): see :func:`continuation_quality`. An accompaniment is scored by the
consonance of the added parts with the melody on the beat grid, next to the same measure
on real Bach chorales: see :mod:`notewave.symbolic.quality_accompaniment`.
Aggregation into a per-style table, the targets and the table renderer live in
:mod:`notewave.symbolic.quality_report`.

symusic does not keep MIDI channels (it assigns them on writing, channel 10 to drum
tracks), so a track's identity is its name, GM program and drum flag.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from symusic import Score, Track

from notewave.core.midi import BarGrid, MidiLike, bar_grid, load_score, midi_name
from notewave.errors import ConfigError, MidiError
from notewave.symbolic.parts import RANGE_MARGIN
from notewave.symbolic.stats import estimate_key, length_shift, pitch_class_entropy, pitched_notes, polyphony

#: Default number of prompt bars before the span that a continuation is compared with.
CONTEXT_BARS = 4


def span_grid(score: Score, last_bar: int) -> BarGrid:
    """The bar grid of ``score`` (:func:`notewave.core.midi.bar_grid`) up to its last note-off,
    extended in the last meter to hold at least ``last_bar`` bars."""
    grid = bar_grid(score)
    return grid.extended(last_bar - grid.bars) if grid.bars < last_bar else grid


def piece_bars(score: Score) -> int:
    """Bars of the grid up to the last note-off (a release under a 32nd note past a bar line opens none)."""
    return bar_grid(score).bars


def beat_length(ticks_per_quarter: int, meter: tuple[int, int]) -> int:
    """Length in ticks of the beat of ``meter`` (numerator, denominator): one ``1/denominator``
    note, or a dotted one (three of them) in compound meters (6/8, 9/8, 12/8, 6/16 ...)."""
    num, den = meter
    unit = max(1, ticks_per_quarter * 4 // max(den, 1))
    return 3 * unit if den >= 8 and num > 3 and num % 3 == 0 else unit


def track_labels(score: Score) -> list[str]:
    """One unique label per track: its name (``track<i>`` when unnamed), ``#<i>`` added to repeats."""
    names = [t.name.strip() or f"track{i}" for i, t in enumerate(score.tracks)]
    repeats = Counter(names)
    return [f"{n}#{i}" if repeats[n] > 1 else n for i, n in enumerate(names)]


def note_arrays(track: Track) -> dict[str, np.ndarray]:
    """``time``, ``duration`` (ticks) and ``pitch`` of the notes of ``track`` as int64 arrays."""
    notes = track.notes.numpy()
    return {k: np.asarray(notes[k], dtype=np.int64) for k in ("time", "duration", "pitch")}


def _onsets(arrays: dict[str, np.ndarray], start: int, end: int) -> np.ndarray:
    """Boolean mask of the notes with onset in ``[start, end)`` ticks."""
    return (arrays["time"] >= start) & (arrays["time"] < end)


def _bars_with_onsets(tracks: Iterable[dict[str, np.ndarray]], lines: Sequence[int]) -> np.ndarray:
    """Boolean per bar of ``lines`` (``len(lines) - 1`` bars): some note of ``tracks`` starts there."""
    hit = np.zeros(len(lines) - 1, dtype=bool)
    for arrays in tracks:
        bars = np.searchsorted(np.asarray(lines), arrays["time"], side="right") - 1
        hit[np.unique(bars[(bars >= 0) & (bars < len(hit))])] = True
    return hit


def pitch_class_histogram(score: Score, start: int, end: int) -> np.ndarray:
    """Duration-weighted pitch-class histogram (12 values, ticks) of the pitched notes with onset
    in ``[start, end)`` ticks, each note weighted by its duration clipped at ``end``."""
    hist = np.zeros(12)
    for note in pitched_notes(score, start, end):
        hist[note.pitch % 12] += max(1, min(note.time + note.duration, end) - note.time)
    return hist


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two histograms (0..1 for non-negative ones); 0.0 when one is all zero."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else 0.0


@dataclass(frozen=True)
class TrackContinuation:
    """One output track over the context bars and the span (notes per bar are onsets / bars)."""

    label: str
    is_drum: bool
    context_notes_per_bar: float
    new_notes_per_bar: float
    #: The track sounds in the last prompt bar before the span.
    active_at_prompt_end: bool

    @property
    def density_ratio(self) -> float:
        """New notes per bar / context notes per bar; NaN when the track is silent in the context."""
        if self.context_notes_per_bar == 0:
            return math.nan
        return self.new_notes_per_bar / self.context_notes_per_bar


@dataclass(frozen=True)
class ContinuationQuality:
    """Measures of one continuation or infill (see :func:`continuation_quality`)."""

    name: str
    style: str
    first_bar: int
    last_bar: int
    context_first_bar: int
    #: Note onsets (pitched and drums) per bar over the context bars and over the span.
    context_notes_per_bar: float
    new_notes_per_bar: float
    #: Span bars without any note onset, and context bars without any.
    empty_bars: int
    context_empty_bars: int
    context_has_drums: bool
    #: Share of span bars with a drum onset; None when the context has no drum notes.
    drum_bar_share: float | None
    #: Cosine of the context's and the span's duration-weighted pitch-class histograms (0..1);
    #: NaN when the context has no pitched notes, 0.0 when the span has none.
    key_cosine: float
    context_key: str | None
    new_key: str | None
    #: Pitch-class entropy (bits) and polyphony (pitched notes per sounding 16th) of the span,
    #: and of the real held-out bars when a reference was given (else None).
    entropy: float
    polyphony: float
    reference_entropy: float | None = None
    reference_polyphony: float | None = None
    #: Share (0..1) of the span's pitched notes inside their track's register: the lowest to the
    #: highest pitch the track plays outside the span, widened by ``RANGE_MARGIN`` semitones
    #: (:func:`register_share`); None when no pitched track plays both inside and outside it.
    in_register: float | None = None
    #: Every prompt track with notes is in the output with the same name, program and drum
    #: flag; None when no prompt was given. ``changed_tracks`` lists those that are not.
    tracks_kept: bool | None = None
    changed_tracks: tuple[str, ...] = ()
    tracks: tuple[TrackContinuation, ...] = field(default=())
    #: Bars after the span that are part of the context (an infill's right side; 0: none).
    context_after_bars: int = 0
    #: Share of context bars with a drum onset (a groove: 1.0); None when it has no drum notes.
    context_drum_bar_share: float | None = None
    #: How far the span's note lengths are from each pitched track's own in the context, in
    #: octaves (:func:`~notewave.symbolic.stats.length_shift`); NaN when no track has both.
    length_shift: float = math.nan

    @property
    def bars(self) -> int:
        """Bars in the span."""
        return self.last_bar - self.first_bar

    @property
    def density_ratio(self) -> float:
        """New notes per bar in the span / notes per bar over the context bars."""
        return self.new_notes_per_bar / self.context_notes_per_bar

    @property
    def empty_bar_share(self) -> float:
        """Share (0..1) of span bars without a note onset."""
        return self.empty_bars / self.bars

    @property
    def prompt_had_empty_bars(self) -> bool:
        """Some context bar has no note onset."""
        return self.context_empty_bars > 0

    @property
    def empty_where_prompt_had_none(self) -> bool:
        """The span has an empty bar although no context bar was empty."""
        return self.empty_bars > 0 and not self.prompt_had_empty_bars

    @property
    def drums_continued(self) -> bool | None:
        """The drums play in the span's bars at least as often as in the context's: in every span
        bar when they play in every context bar (a groove), in one of two when they play in one of two
        around (a crash every other bar); None when the context has no drum notes. (Without the
        context share, as before session 15: in every span bar.)"""
        if self.drum_bar_share is None:
            return None
        around = 1.0 if self.context_drum_bar_share is None else self.context_drum_bar_share
        return self.drum_bar_share >= around - 1e-9

    @property
    def keys_agree(self) -> bool | None:
        """The Krumhansl-Kessler keys of context and span are the same; None when one is unknown."""
        if self.context_key is None or self.new_key is None:
            return None
        return self.context_key == self.new_key

    @property
    def silent_tracks(self) -> tuple[str, ...]:
        """Tracks sounding in the last prompt bar that get no new note in the span."""
        return tuple(t.label for t in self.tracks if t.active_at_prompt_end and t.new_notes_per_bar == 0)


def register_share(
    score: Score, arrays: Sequence[dict[str, np.ndarray]], span: tuple[int, int], margin: int = RANGE_MARGIN
) -> float | None:
    """Share (0..1) of the pitched notes with onset in ``span`` (ticks) whose pitch lies within
    ``margin`` semitones of the lowest to highest pitch their track plays outside it (a track
    keeping its identity: on the held-out pieces 99.9 % of real notes do at 7); None when no
    pitched track has notes both inside and outside the span. ``arrays``: :func:`note_arrays` of
    each track of ``score``."""
    inside = total = 0
    for track, a in zip(score.tracks, arrays):
        new = _onsets(a, *span)
        if track.is_drum or not new.any() or new.all():
            continue
        given, pitches = a["pitch"][~new], a["pitch"][new]
        inside += int(((pitches >= given.min() - margin) & (pitches <= given.max() + margin)).sum())
        total += len(pitches)
    return inside / total if total else None


def _signature(track) -> tuple[str, int, bool]:
    return (track.name, int(track.program), bool(track.is_drum))


def changed_tracks(prompt: Score, output: Score) -> list[str]:
    """Labels of the prompt tracks with notes that have no output track of the same name, program
    and drum flag (each output track matches at most one prompt track)."""
    available = Counter(_signature(t) for t in output.tracks)
    changed = []
    for label, track in zip(track_labels(prompt), prompt.tracks):
        if len(track.notes) == 0:
            continue
        if available[_signature(track)] > 0:
            available[_signature(track)] -= 1
        else:
            changed.append(label)
    return changed


def continuation_quality(
    output: MidiLike,
    first_bar: int,
    last_bar: int,
    *,
    prompt: MidiLike | None = None,
    reference: MidiLike | None = None,
    context_bars: int = CONTEXT_BARS,
    context_after: int = 0,
    name: str | None = None,
    style: str = "",
) -> ContinuationQuality:
    """Measure the new bars ``[first_bar, last_bar)`` of ``output`` against its context.

    Args:
        output: the composer's output (path, MIDI bytes or Score) holding the prompt bars and
            the new ones.
        first_bar, last_bar: the span of new bars, as bar indices of ``output``'s grid.
        prompt: the prompt as given to the composer, for ``tracks_kept`` (optional).
        reference: the real piece whose bars ``[first_bar, last_bar)`` are the real
            continuation, for the reference entropy and polyphony (optional).
        context_bars: how many bars before the span form the context (fewer when the span
            starts earlier).
        context_after: how many bars after the span join the context (fewer when ``output``
            ends earlier; an infill's prompt is the music on both sides). The context's notes
            per bar (density ratio), pitch-class histogram (key cosine), drums and empty bars
            are then read on both sides.
        name, style: labels kept in the result (``name`` defaults to the file's path).

    Returns:
        A :class:`ContinuationQuality`. Densities are note onsets per bar, entropies bits,
        polyphony notes per sounding 16th note.

    Raises:
        ConfigError: ``context_bars < 1``, ``context_after < 0``, ``first_bar < 1``,
            ``last_bar <= first_bar``, the span starts after the last bar of ``output``, or ends
            after the last bar of ``reference``.
        MidiError: a file is unreadable or has no notes, or no note starts in the context bars.
    """
    label = name if name is not None else midi_name(output)
    if context_bars < 1:
        raise ConfigError(f"context_bars must be >= 1, got {context_bars}")
    if context_after < 0:
        raise ConfigError(f"context_after must be >= 0, got {context_after}")
    if first_bar < 1 or last_bar <= first_bar:
        raise ConfigError(f"span [{first_bar}, {last_bar}) must satisfy 1 <= first_bar < last_bar")
    score = load_score(output)
    if first_bar > (bars := piece_bars(score)):
        raise ConfigError(f"span [{first_bar}, {last_bar}) starts after the {bars} bars of {label}")
    after = max(0, min(context_after, bars - last_bar))
    lines = [int(x) for x in span_grid(score, last_bar + after).lines]
    ctx_first = max(0, first_bar - context_bars)
    ctx, span = (lines[ctx_first], lines[first_bar]), (lines[first_bar], lines[last_bar])
    ctx_after = (lines[last_bar], lines[last_bar + after])
    arrays = [note_arrays(t) for t in score.tracks]
    ctx_bars, span_bars = first_bar - ctx_first + after, last_bar - first_bar
    in_ctx = [_onsets(a, *ctx) | _onsets(a, *ctx_after) for a in arrays]  # per track, onset masks
    in_span = [_onsets(a, *span) for a in arrays]
    ctx_counts, span_counts = [int(m.sum()) for m in in_ctx], [int(m.sum()) for m in in_span]
    if sum(ctx_counts) == 0:
        after_text = f" or [{last_bar}, {last_bar + after})" if after else ""
        raise MidiError(
            f"no note starts in the context bars [{ctx_first}, {first_bar}){after_text} of {label}"
        )
    last_prompt_bar = (lines[first_bar - 1], lines[first_bar])
    tracks = tuple(
        TrackContinuation(
            track_label,
            bool(track.is_drum),
            n_ctx / ctx_bars,
            n_span / span_bars,
            bool(np.any((a["time"] < last_prompt_bar[1]) & (a["time"] + a["duration"] > last_prompt_bar[0]))),
        )
        for track_label, track, a, n_ctx, n_span in zip(
            track_labels(score), score.tracks, arrays, ctx_counts, span_counts
        )
    )
    drums = [a for t, a in zip(score.tracks, arrays) if t.is_drum]
    has_drums = any(n > 0 for t, n in zip(score.tracks, ctx_counts) if t.is_drum)
    ctx_hist = pitch_class_histogram(score, *ctx) + pitch_class_histogram(score, *ctx_after)
    new_hist = pitch_class_histogram(score, *span)
    new_notes = pitched_notes(score, *span)
    sixteenth = max(1, score.ticks_per_quarter // 4)
    span_lines = lines[first_bar : last_bar + 1]
    ctx_sides = (lines[ctx_first : first_bar + 1], lines[last_bar : last_bar + after + 1])  # bar lines
    result = ContinuationQuality(
        name=label,
        style=style,
        first_bar=first_bar,
        last_bar=last_bar,
        context_first_bar=ctx_first,
        context_notes_per_bar=sum(ctx_counts) / ctx_bars,
        new_notes_per_bar=sum(span_counts) / span_bars,
        empty_bars=int((~_bars_with_onsets(arrays, span_lines)).sum()),
        context_empty_bars=int(sum((~_bars_with_onsets(arrays, side)).sum() for side in ctx_sides)),
        context_has_drums=has_drums,
        drum_bar_share=float(_bars_with_onsets(drums, span_lines).mean()) if has_drums else None,
        context_drum_bar_share=(
            float(np.concatenate([_bars_with_onsets(drums, side) for side in ctx_sides]).mean())
            if has_drums
            else None
        ),
        key_cosine=cosine(ctx_hist, new_hist) if ctx_hist.any() else math.nan,
        context_key=estimate_key(ctx_hist),
        new_key=estimate_key(new_hist),
        entropy=pitch_class_entropy(new_notes),
        polyphony=polyphony(new_notes, sixteenth),
        in_register=register_share(score, arrays, span),
        tracks=tracks,
        context_after_bars=after,
        length_shift=length_shift(
            [a["duration"][m] for t, a, m in zip(score.tracks, arrays, in_span) if not t.is_drum],
            [a["duration"][m] for t, a, m in zip(score.tracks, arrays, in_ctx) if not t.is_drum],
        ),
    )
    if prompt is not None:
        changed = tuple(changed_tracks(load_score(prompt), score))
        result = replace(result, tracks_kept=not changed, changed_tracks=changed)
    if reference is not None:
        real = load_score(reference)
        if last_bar > (bars := piece_bars(real)):
            raise ConfigError(
                f"span [{first_bar}, {last_bar}) ends after the {bars} bars of the reference "
                f"{midi_name(reference)}"
            )
        real_lines = [int(x) for x in span_grid(real, last_bar).lines]
        real_notes = pitched_notes(real, real_lines[first_bar], real_lines[last_bar])
        result = replace(
            result,
            reference_entropy=pitch_class_entropy(real_notes),
            reference_polyphony=polyphony(real_notes, max(1, real.ticks_per_quarter // 4)),
        )
    return result

"""Decoding guides (logit biases by grammar state) and consonance guidance for accompaniment.

A :class:`Guide` gives, for each slot the composer writes, a bias function added to the
logits before sampling (:meth:`notewave.symbolic.decode.Decoder.run`); :func:`combine` sums
several. :class:`ConsonanceGuide` is here, :class:`~notewave.symbolic.key_guide.KeyGuide` beside it.

When the composer accompanies a melody (``accompany``), it writes each new part bar by bar
with MMM bar-fill. The model alone doubles or seconds the melody more often than a
composer would (on JSB chorales its added voices are consonant with the soprano on fewer
beats than Bach's). :class:`ConsonanceGuide` lowers, before sampling, the logit of every
``Pitch`` id whose interval class with the melody note sounding at that onset is
dissonant (the complement of
:data:`~notewave.symbolic.quality_accompaniment.CONSONANT_INTERVALS`: seconds, the
tritone and sevenths) by ``strength`` nats. It is a soft bias: a dissonance the model is
sure of (a passing note, a seventh) stays possible, and the grammar mask is unchanged, so
every sample still decodes. This is guided (weighted) decoding in the sense of
constraint-biased sampling, e.g. the "soft constraints" of Pachet & Roy's Markov
constraints; ``strength=0`` is the model alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar, Protocol

import numpy as np
import torch

from notewave.errors import ConfigError
from notewave.symbolic.decode import Bias
from notewave.symbolic.grammar import State
from notewave.symbolic.piece import BAR, DUR, PITCH, POS, TRACK, Piece
from notewave.symbolic.quality_accompaniment import CONSONANT_INTERVALS
from notewave.symbolic.vocab import DRUMS, DURATIONS, Vocab, bar_positions

#: Share of ``strength`` taken from a length that holds a pitch into a later dissonant melody
#: note (a suspension or a tied passing note is commoner than a struck dissonance). Picked on
#: 6 JSB *validation* chorales x 2 seeds with the session-8 composer: strength 2 and this share
#: give 0.86 consonant beats (Bach's own: 0.81; the model alone: about 0.44).
HELD_SHARE = 0.5


class Guide(Protocol):
    """A decoding guide: ``for_bar(piece, bar)`` gives the bias function for writing notes in
    ``bar`` of ``piece`` (the music as it stands; the state names the track), or ``None``."""

    def for_bar(self, piece: Piece, bar: int) -> Bias | None: ...


def check_strength(name: str, strength: float) -> float:
    """``strength`` as a float.

    Raises:
        ConfigError: a negative or non-finite strength (the message names the guide).
    """
    if not np.isfinite(strength) or strength < 0:
        raise ConfigError(f"{name} strength must be a finite number >= 0, got {strength}")
    return float(strength)


def nearest_bars(bar: int, end: int, counts: Callable[[int], bool], n: int) -> list[int]:
    """Up to ``n`` bars on each side of ``bar`` (0-based), nearest first, that are before ``end``,
    are not ``bar`` and for which ``counts(b)`` holds: the music around a bar being written that a
    guide reads (a skipped bar is stepped over, so a rewritten span still has its context)."""
    left = [b for b in range(min(bar, end) - 1, -1, -1) if counts(b)][:n]
    right = [b for b in range(bar + 1, end) if counts(b)][:n]
    return left + right


class Surroundings:
    """What a guide reads around the bar being written: the ``bars`` nearest counted bars on each
    side (:func:`nearest_bars`), leaving out ``skip`` ``(bar, track)`` slots (an infill's own) and
    bars from ``until`` on (a continuation's new ones). The shared settings of the key, density
    and length guides; each subclass names itself (:attr:`name`) and its :attr:`default_bars`.

    Args:
        vocab: the tokenizer's vocabulary.
        strength: weight of the guide's log-probability, in nats per log unit (>= 0).
        bars: nearest counted bars each side that are read (``None``: :attr:`default_bars`).
        skip: ``(bar, track)`` slots (0-based bars) that do not count: the slots an infill rewrites.
        until: bars from this one on (0-based) do not count: a continuation's new bars.

    Raises:
        ConfigError: a negative or non-finite ``strength``, or ``bars < 1`` (messages name the guide).
    """

    name: ClassVar[str] = "guide"
    default_bars: ClassVar[int] = 4

    def __init__(
        self,
        vocab: Vocab,
        strength: float,
        bars: int | None = None,
        skip: Iterable[tuple[int, int]] = (),
        until: int | None = None,
    ):
        name, bars = self.name, self.default_bars if bars is None else bars
        self.vocab = vocab
        self.strength = check_strength(name, strength)
        if bars < 1:
            raise ConfigError(f"{name} bars must be >= 1, got {bars}")
        self.bars = bars
        self.skip = {(int(b), int(t)) for b, t in skip}
        self.until = until

    def end(self, piece: Piece) -> int:
        """The first bar of ``piece`` that does not count (its length, or ``until``)."""
        return piece.bars if self.until is None else min(piece.bars, self.until)


def span_bias(vocab: Vocab, kind: str, values: np.ndarray) -> torch.Tensor:
    """Float32 ``[vocab size]``: ``values`` (one per id of ``kind``, e.g. ``"Pitch"``) on the ids of
    that kind, 0 elsewhere."""
    out = torch.zeros(len(vocab))
    span = vocab.spans[kind]
    out[span.start : span.stop] = torch.as_tensor(values, dtype=out.dtype)
    return out


class ConsonanceGuide:
    """Biases for the ``Pitch`` ids of added parts against the melody of a piece.

    Args:
        vocab: the tokenizer's vocabulary.
        piece: the piece being accompanied; its ``melody`` tracks stay as they are.
        melody: indices of the tracks the added parts must sound with (their highest pitch
            sounding at an onset is the melody note there, as in
            :func:`~notewave.symbolic.quality_accompaniment.consonance_counts`).
        strength: nats taken from the logit of a dissonant pitch (>= 0; 0: no guidance).

    Raises:
        ConfigError: a negative or non-finite ``strength``, or a melody track the piece lacks.
    """

    def __init__(self, vocab: Vocab, piece: Piece, melody: Iterable[int], strength: float):
        self.strength = check_strength("consonance", strength)
        tracks = sorted({int(t) for t in melody})
        if any(not 0 <= t < piece.tracks for t in tracks):
            raise ConfigError(f"melody tracks {tracks} outside the piece's {piece.tracks} tracks")
        self.vocab = vocab
        self.programs = list(piece.programs)
        self.consonant = np.array(sorted(CONSONANT_INTERVALS))
        lengths = [bar_positions(*m) for m in piece.meters]
        self.bar_start = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        rows = piece.notes[np.isin(piece.notes[:, TRACK], tracks)]
        self.onset = self.bar_start[rows[:, BAR]] + rows[:, POS]
        self.end = self.onset + np.asarray(DURATIONS)[rows[:, DUR]]
        self.pitch = rows[:, PITCH].astype(np.int64)
        self._bias: dict[int, torch.Tensor] = {}

    def melody_pitch(self, bar: int, pos: int) -> int | None:
        """The highest melody pitch sounding at ``pos`` (positions, 12 per quarter) of ``bar``."""
        at = int(self.bar_start[bar]) + pos
        sounding = self.pitch[(self.onset <= at) & (self.end > at)]
        return int(sounding.max()) if len(sounding) else None

    def _pitch_bias(self, melody: int) -> torch.Tensor:
        """Float ``[vocab size]``: ``-strength`` on the ``Pitch`` ids dissonant with ``melody``."""
        cached = self._bias.get(melody % 12)
        if cached is None:
            span = self.vocab.spans["Pitch"]
            dissonant = self._dissonant(melody - np.arange(span.stop - span.start))
            cached = span_bias(self.vocab, "Pitch", np.where(dissonant, -self.strength, 0.0))
            self._bias[melody % 12] = cached
        return cached

    def _duration_bias(self, bar: int, pos: int, pitch: int) -> torch.Tensor | None:
        """Float ``[vocab size]``: ``-strength * HELD_SHARE`` on the ``Dur`` ids that would hold
        ``pitch`` from ``pos`` of ``bar`` into a later melody note dissonant with it; ``None`` when
        none would."""
        at = int(self.bar_start[bar]) + pos
        clash = (self.onset > at) & self._dissonant(self.pitch - pitch)
        if not clash.any():
            return None
        first = int(self.onset[clash].min())  # a length reaching past this onset holds into it
        held = at + np.asarray(DURATIONS) > first
        return span_bias(self.vocab, "Dur", np.where(held, -self.strength * HELD_SHARE, 0.0))

    def _dissonant(self, intervals: np.ndarray) -> np.ndarray:
        """Bool, per interval (semitones): its interval class is not in ``CONSONANT_INTERVALS``."""
        return ~np.isin(intervals % 12, self.consonant)

    def for_bar(self, piece: Piece, bar: int) -> Bias | None:
        """The bias function for writing notes in ``bar`` (``piece``, the music as it stands, is
        not needed: the melody is fixed): state -> float ``[vocab size]`` (added to the logits)
        or ``None``. On a ``Pitch`` choice it lowers the pitches dissonant with the melody note
        sounding at the onset; on a ``Dur`` choice the lengths that would hold the chosen pitch
        into a later melody note dissonant with it. Drum tracks get ``None``; so does everything
        at strength 0."""
        if self.strength == 0:
            return None

        def bias(state: State) -> torch.Tensor | None:
            if not 0 <= state.track < len(self.programs) or self.programs[state.track] == DRUMS:
                return None
            if state.phase == "vel":
                return self._duration_bias(bar, state.pos, state.pitch)
            if state.phase not in ("pos", "note") or state.pos < 0:
                return None
            melody = self.melody_pitch(bar, state.pos)
            return None if melody is None else self._pitch_bias(melody)

        return bias


def combine(guides: Sequence[Guide], piece: Piece, bar: int) -> Bias | None:
    """The sum of the ``guides``' bias functions for ``bar`` (``None`` when none applies)."""
    parts = [b for g in guides if (b := g.for_bar(piece, bar)) is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]

    def total(state: State) -> torch.Tensor | None:
        found = [x for b in parts if (x := b(state)) is not None]
        return sum(found[1:], found[0]) if found else None

    return total

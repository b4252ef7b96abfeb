"""Length guidance: a logit bias that keeps each track's note lengths near those it plays around it.

Found on the test pieces (session 13): an infilled MMA ballad came back with every one of its
five tracks holding whole-bar and longer notes (median 4 quarters, the real bars 1-2), so 30
pitched notes sounded at once on average where the real bars hold 10. The pitch guides cannot see
this, and the density guide counts onsets, not how long they ring. A track's note lengths are
part of its role (a bass in quarters, a pad in whole notes, a comping guitar in eighths), and the
music around a written bar shows them. :class:`LengthGuide` adds ``strength * log(D p_t(d))`` to
the logit of every ``Dur`` id ``d`` of a pitched track ``t``, where ``D`` is the number of
duration bins and ``p_t`` the track's length profile: a Gaussian kernel in log length
(:data:`LENGTH_SIGMA` octaves wide) around each of the track's notes in the bars around the one
being written (the :data:`LENGTH_BARS` nearest counted bars each side: the slots an infill
rewrites and the bars a continuation writes do not count, as for the key and density guides),
mixed with a uniform share :data:`LENGTH_FLOOR`. A product of experts of the language model and a
per-track length model (Hinton 2002), the rhythm counterpart of
:class:`~notewave.symbolic.key_guide.KeyGuide`. Lengths the track plays gain, far ones lose at
most ``strength * log(1 / LENGTH_FLOOR)`` nats; a track silent around the bar, drums and the
grammar mask are untouched, so every sample still decodes. ``strength=0`` is the model alone.
"""

from __future__ import annotations

import numpy as np
import torch

from notewave.symbolic.decode import Bias
from notewave.symbolic.grammar import State
from notewave.symbolic.guide import Surroundings, nearest_bars, span_bias
from notewave.symbolic.piece import BAR, DUR, TRACK, Piece
from notewave.symbolic.vocab import DRUMS, DURATIONS

LENGTH_BARS = 4  # nearest counted bars each side of the bar being written that make a track's profile
#: Kernel width in octaves of length: a length twice as long as a note gets exp(-1/2) of its weight, four
#: times exp(-2). Validation (3 pieces per style, 2 seeds, weight 1.5): 0.5 octave brought the length
#: shift nearer the real bars' (0.23-0.36 against 0.36-0.45 octaves) but also thinned out the
#: variety of a chorale voice's lengths, so its infills came out denser (median density ratio
#: 1.46 / 1.51 against 1.20 / 1.26; the real bars 1.10): the guide is for lengths an octave off.
LENGTH_SIGMA = 1.0
LENGTH_FLOOR = 0.1  # uniform share: a length far from all the track plays gets weight x log 0.1 nats

_LOG_LENGTHS = np.log2(np.asarray(DURATIONS, dtype=np.float64))
#: ``[bins, bins]``: kernel weight of duration bin j (column) for a note in bin i (row).
_KERNEL = np.exp(-0.5 * ((_LOG_LENGTHS[None, :] - _LOG_LENGTHS[:, None]) / LENGTH_SIGMA) ** 2)


class LengthGuide(Surroundings):
    """Biases for the lengths of each pitched track's new notes toward the lengths it plays around.

    Arguments as :class:`~notewave.symbolic.guide.Surroundings` (``strength``: weight of the length
    model's log-probability; ``bars``: default :data:`LENGTH_BARS`, the bars each side that make a
    track's profile). Raises ConfigError for a negative or non-finite ``strength``, or ``bars < 1``.
    """

    name = "lengths"
    default_bars = LENGTH_BARS

    def profile(self, piece: Piece, bar: int, track: int) -> np.ndarray | None:
        """Float64 ``[len(DURATIONS)]`` length profile of ``track`` (sums to 1; :data:`LENGTH_FLOOR`
        of it uniform) from its notes in the :attr:`bars` nearest counted bars each side of ``bar``
        (a counted bar is inside the piece, before ``until``, not ``bar`` and not a skipped slot of
        the track); ``None`` for a drum track or one without a note there."""
        if piece.programs[track] == DRUMS:
            return None
        counted = nearest_bars(bar, self.end(piece), lambda b: (b, track) not in self.skip, self.bars)
        rows = piece.notes[(piece.notes[:, TRACK] == track) & np.isin(piece.notes[:, BAR], counted)]
        if not len(rows):
            return None
        weights = _KERNEL[rows[:, DUR]].sum(axis=0)
        return (1 - LENGTH_FLOOR) * weights / weights.sum() + LENGTH_FLOOR / len(DURATIONS)

    def bias_of(self, profile: np.ndarray) -> torch.Tensor:
        """Float ``[vocab size]``: ``strength * log(D p)`` on every ``Dur`` id, 0 elsewhere."""
        return span_bias(self.vocab, "Dur", self.strength * np.log(len(DURATIONS) * profile))

    def for_bar(self, piece: Piece, bar: int) -> Bias | None:
        """The bias function for writing notes in ``bar`` given the music of ``piece`` around it:
        the track's length bias on a ``Dur`` choice (after a ``Vel``) of a pitched track with notes
        around; ``None`` at strength 0 or when no track has any."""
        if self.strength == 0:
            return None
        profiles = [self.profile(piece, bar, track) for track in range(piece.tracks)]
        biases = [None if p is None else self.bias_of(p) for p in profiles]
        if all(b is None for b in biases):
            return None

        def lengths(state: State) -> torch.Tensor | None:
            if state.phase != "vel" or not 0 <= state.track < len(biases):
                return None
            return biases[state.track]

        return lengths

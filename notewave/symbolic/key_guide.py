"""Key guidance: a logit bias that keeps new bars in the key of the music around them.

The composer is small next to the number of styles it knows; in the dense multitrack styles
(rock, latin, jazz) its new bars drift from the key of the bars around them more often than
the real music does (key-profile cosine of infilled bars 0.3-0.6 where the real bars give
0.8-0.9). :class:`KeyGuide` adds ``strength * log(12 p(pc))`` to the logit of every pitched
``Pitch`` id, where ``p`` is the duration-weighted pitch-class profile of the pitched notes
in the bars around the one being written (the :data:`KEY_BARS` nearest counted bars each side,
the bar's own other tracks included; the slots an infill rewrites and the bars a continuation
writes do not count, so the guide holds to the music given and does not follow its own drift),
mixed with a uniform share :data:`KEY_FLOOR`: a product of experts of the
language model and a key model (Hinton 2002), the same shape as the tonal priors of
HMM-based harmonizers. Pitch classes the surroundings use gain, unused ones lose at most
``strength * log(1 / KEY_FLOOR)`` nats; drums and the grammar mask are untouched, so every
sample still decodes. ``strength=0`` is the model alone.
"""

from __future__ import annotations

import numpy as np
import torch

from notewave.symbolic.decode import Bias
from notewave.symbolic.grammar import State
from notewave.symbolic.guide import Surroundings, nearest_bars, span_bias
from notewave.symbolic.piece import BAR, DUR, PITCH, TRACK, Piece
from notewave.symbolic.vocab import DRUMS, DURATIONS

KEY_BARS = 4  # nearest counted bars each side of the bar being written that make its key profile
KEY_FLOOR = 0.1  # uniform share mixed into the profile: an unused pitch class gets weight x log 0.1 nats


class KeyGuide(Surroundings):
    """Biases for the pitches of new bars toward the key profile of the bars around them.

    Arguments as :class:`~notewave.symbolic.guide.Surroundings` (``strength``: weight of the key
    model's log-probability; ``bars``: default :data:`KEY_BARS`, the bars each side that make the
    profile). Raises ConfigError for a negative or non-finite ``strength``, or ``bars < 1``.
    """

    name = "key"
    default_bars = KEY_BARS

    def profile(self, piece: Piece, bar: int) -> np.ndarray | None:
        """Float64 ``[12]`` pitch-class profile (sums to 1; :data:`KEY_FLOOR` of it uniform) of the
        pitched notes of ``piece`` in ``bar`` and its :attr:`bars` nearest counted bars each side
        (a counted bar is inside the piece, before ``until`` and holds a slot not skipped; skipped
        slots' notes are left out), each weighted by its duration (positions); ``None`` when
        those bars hold no pitched note."""
        notes = piece.notes
        end = self.end(piece)
        tracks = range(piece.tracks)
        counted = nearest_bars(bar, end, lambda b: any((b, t) not in self.skip for t in tracks), self.bars)
        near = np.isin(notes[:, BAR], [*counted, bar] if bar < end else counted)
        pitched = np.asarray([p != DRUMS for p in piece.programs] or [False])
        rows = notes[near & pitched[notes[:, TRACK]]] if len(notes) else notes
        if self.skip:  # only the rows of the counted bars are checked against the skipped slots
            rows = rows[[(int(b), int(t)) not in self.skip for b, t in rows[:, [BAR, TRACK]]]]
        if not len(rows):
            return None
        weights = np.asarray(DURATIONS, dtype=np.float64)[rows[:, DUR]]
        hist = np.bincount(rows[:, PITCH] % 12, weights, minlength=12)
        return (1 - KEY_FLOOR) * hist / hist.sum() + KEY_FLOOR / 12

    def bias_of(self, profile: np.ndarray) -> torch.Tensor:
        """Float ``[vocab size]``: ``strength * log(12 p)`` on every ``Pitch`` id, 0 elsewhere."""
        span = self.vocab.spans["Pitch"]
        pitch_classes = np.arange(span.stop - span.start) % 12
        return span_bias(self.vocab, "Pitch", self.strength * np.log(12 * profile[pitch_classes]))

    def for_bar(self, piece: Piece, bar: int) -> Bias | None:
        """The bias function for writing notes in ``bar`` given the music of ``piece`` around it
        (bars past the piece's end count as empty): the key bias on a ``Pitch`` choice of a
        pitched track; ``None`` with no pitched note around or at strength 0."""
        if self.strength == 0 or (profile := self.profile(piece, bar)) is None:
            return None
        bias = self.bias_of(profile)
        pitched = [p != DRUMS for p in piece.programs]

        def key(state: State) -> torch.Tensor | None:
            if state.phase not in ("pos", "note") or state.pos < 0:
                return None
            return bias if 0 <= state.track < len(pitched) and pitched[state.track] else None

        return key

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

That prior alone does not stop the model repeating itself: on a Freedoom metal riff whose
bars around cycle through D, F, A, C and B-flat, the composer filled four bars with 40 Ds (key
cosine 0.2-0.7, the real bars 0.98), and over the validation pieces its new pitch classes were
0.13-0.25 bits less varied than the real bars'. The **balance** term adds
``balance * log(p(pc) / q(pc))``, where ``q`` is the pitch-class histogram of the pitched notes
written in the edit so far (every bar and track: the new notes already in the piece, that is the
bars from ``until`` on or the ``skip`` slots, plus those the current decoding run has closed),
smoothed with :data:`BALANCE_PRIOR` notes of ``p``: a pitch class written past its share of the
surroundings loses, one left out gains, and nothing changes before the first note or while the
new notes keep the surroundings' mix. It is a repetition penalty (Keskar et al. 2019, CTRL) by
pitch class, aimed at a profile instead of at zero, and part of the key guide: at ``strength=0``
it is off too. One guide object serves one edit.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from notewave.symbolic.decode import Bias
from notewave.symbolic.grammar import State
from notewave.symbolic.guide import Surroundings, check_strength, nearest_bars, span_bias
from notewave.symbolic.piece import BAR, DUR, PITCH, TRACK, Piece
from notewave.symbolic.vocab import DRUMS, DURATIONS, Vocab

KEY_BARS = 4  # nearest counted bars each side of the bar being written that make its key profile
KEY_FLOOR = 0.1  # uniform share mixed into the profile: an unused pitch class gets weight x log 0.1 nats
BALANCE_PRIOR = 8.0  # notes of the profile the written histogram starts from (the balance's smoothing)


class KeyGuide(Surroundings):
    """Biases for the pitches of new bars toward the key profile of the bars around them.

    Arguments as :class:`~notewave.symbolic.guide.Surroundings` (``strength``: weight of the key
    model's log-probability; ``bars``: default :data:`KEY_BARS`, the bars each side that make the
    profile), and ``balance``: weight of the balance term (see the module docstring; 0: off).
    Raises ConfigError for a negative or non-finite ``strength`` or ``balance``, or ``bars < 1``.
    """

    name = "key"
    default_bars = KEY_BARS

    def __init__(
        self,
        vocab: Vocab,
        strength: float,
        bars: int | None = None,
        skip: Iterable[tuple[int, int]] = (),
        until: int | None = None,
        balance: float = 0.0,
    ):
        super().__init__(vocab, strength, bars, skip, until)
        self.balance = check_strength("key balance", balance)
        self._piece: Piece | None = None  # the piece the last bias function was made for
        self._committed = np.zeros(12)  # pitch classes of the new pitched notes in that piece
        self._pending = np.zeros(12)  # ... and of those closed since, not yet in a piece
        self._last: State | None = None

    @property
    def written(self) -> np.ndarray:
        """Float64 ``[12]``: pitch-class counts of the new pitched notes written so far (``q``
        before smoothing): those in the piece last given to :meth:`for_bar` plus those closed since."""
        return self._committed + self._pending

    def new_notes(self, piece: Piece) -> np.ndarray:
        """Float64 ``[12]``: pitch-class counts of the pitched notes of ``piece`` that the edit wrote
        (bars from ``until`` on, and the ``skip`` slots)."""
        notes = piece.notes
        if not len(notes):
            return np.zeros(12)
        new = notes[:, BAR] >= self.until if self.until is not None else np.zeros(len(notes), bool)
        new |= self.skipped(notes)
        pitched = np.asarray([p != DRUMS for p in piece.programs])[notes[:, TRACK]]
        return np.bincount(notes[new & pitched, PITCH] % 12, minlength=12).astype(np.float64)

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
        rows = rows[~self.skipped(rows)]
        if not len(rows):
            return None
        weights = np.asarray(DURATIONS, dtype=np.float64)[rows[:, DUR]]
        hist = np.bincount(rows[:, PITCH] % 12, weights, minlength=12)
        return (1 - KEY_FLOOR) * hist / hist.sum() + KEY_FLOOR / 12

    def skipped(self, rows: np.ndarray) -> np.ndarray:
        """Bool ``[n]``: which note rows lie in a ``skip`` slot (their ``(bar, track)``)."""
        if not self.skip:
            return np.zeros(len(rows), bool)
        return np.fromiter(((int(b), int(t)) in self.skip for b, t in rows[:, [BAR, TRACK]]), bool, len(rows))

    def by_pitch_class(self, values: np.ndarray) -> torch.Tensor:
        """Float ``[vocab size]``: ``values[pc]`` (float ``[12]``) on every ``Pitch`` id of pitch class
        ``pc``, 0 elsewhere."""
        span = self.vocab.spans["Pitch"]
        return span_bias(self.vocab, "Pitch", values[np.arange(span.stop - span.start) % 12])

    def bias_of(self, profile: np.ndarray) -> torch.Tensor:
        """Float ``[vocab size]``: ``strength * log(12 p)`` on every ``Pitch`` id, 0 elsewhere."""
        return self.by_pitch_class(self.strength * np.log(12 * profile))

    def balance_of(self, profile: np.ndarray, written: np.ndarray | None = None) -> torch.Tensor | None:
        """Float ``[vocab size]``: ``balance * log(p / q)`` on every ``Pitch`` id (``q``: ``written``,
        default :attr:`written`, smoothed toward ``profile``, see the module docstring); ``None``
        before any note."""
        written = self.written if written is None else written
        if self.balance == 0 or not (total := written.sum()):
            return None
        smoothed = (written + BALANCE_PRIOR * profile) / (total + BALANCE_PRIOR)
        return self.by_pitch_class(self.balance * np.log(profile / smoothed))

    def for_bar(self, piece: Piece, bar: int) -> Bias | None:
        """The bias function for writing notes in ``bar`` given the music of ``piece`` around it
        (bars past the piece's end count as empty): the key bias, plus the balance term, on a
        ``Pitch`` choice of a pitched track; ``None`` with no pitched note around or at strength 0.
        The function counts each pitched note it sees close (a ``"note"`` state) until the guide
        is given a new piece, which holds the notes kept (a segment the decoder drops and writes
        again is not counted twice); so the guide serves one edit in order."""
        if self.strength == 0 or (profile := self.profile(piece, bar)) is None:
            return None
        if piece is not self._piece:  # the notes closed so far are in this piece, or were dropped
            self._piece, self._pending = piece, np.zeros(12)
            self._committed = self.new_notes(piece) if self.balance else np.zeros(12)
        bias = self.bias_of(profile)
        pitched = [p != DRUMS for p in piece.programs]
        cached: dict[bytes, torch.Tensor] = {}

        def key(state: State) -> torch.Tensor | None:
            last, self._last = self._last, state
            if state.phase not in ("pos", "note") or state.pos < 0:
                return None
            if not (0 <= state.track < len(pitched) and pitched[state.track]):
                return None
            if state.phase == "note" and state != last and state.pitch >= 0:
                self._pending[state.pitch % 12] += 1  # a pitched note has just closed
            written = self.written
            if (balance := cached.get(written.tobytes())) is None:
                extra = self.balance_of(profile, written)
                balance = cached[written.tobytes()] = bias if extra is None else bias + extra
            return balance

        return key

"""Metrical cursor features: where the current track's music has reached inside the bar.

In the bar-major multitrack format (:mod:`notewave.symbolic.layout`) a note is
``Pos Pitch Vel Dur`` with an absolute onset in the bar, and a track's segment ends with the
next ``Track``/``Bar`` token. Predicting those tokens means adding up onsets and durations:
a voice's next onset usually falls where its last note ends, and its segment ends when its
notes fill the bar. A small, briefly trained transformer does this arithmetic badly (on the
JSB test chorales the first multi-style checkpoint spent 1.6 nats per ``Pos``, 2.1 per
``Track`` and 2.5 per ``Bar`` token), which also makes continuations thin out: a part that
has not filled its bar is closed early.

The cursor gives the model the sum directly, as two extra embeddings added to each token's
(the same idea as the beat and bar embeddings of the Compound Word Transformer, Hsiao et al.
2021, and the metrical features of Music Transformer variants; computed from the tokens
themselves, so it adds no tokens and needs no change to the grammar):

- ``cursor``: positions from the bar line to the end of the latest note of the current track
  so far in this bar, carried over the bar line for notes that sound on (0..97, 97 meaning
  "beyond the longest bar");
- ``left``: positions from there to the bar's end (``bar length - cursor``, 0..96).

With ``harmony`` (a second, optional part of the table) the model also reads, at each onset
(``Pos`` and the ``Pitch Vel Dur`` that follow it), the pitches the *other* pitched tracks sound
at that onset, as far as the sequence has written them: in a chorale the alto sees the
soprano's note, the bass all three upper voices (notes held over the bar line included; drum
tracks left out). Up to :data:`HARMONY_SLOTS` pitches, highest first, each an embedding row; the
model sums them. This is the vertical context a voice-leading decision needs, which the
bar-major layout otherwise leaves to attention over the earlier segments of the bar.

Tokens outside a track segment (header, ``Bar``, ``TimeSig``, ``Tempo``, ``Fill``,
``FillStart``, ``FillEnd``, ``EOS``, ``PAD``) get the ``none`` index of both tables. A fill
(``FillStart Track_i ... FillEnd``, written after the last bar) is measured in its slot's bar:
each ``Fill`` token queues the slot's bar length and carry-over, and the fills, written in the
order of their ``Fill`` tokens, take them in turn. A window that starts inside a piece (training
windows and decoding contexts start with the header and a bar line) does not know what notes
held over from the bar before it; the cursor starts those tracks at 0.

:class:`CursorTracker` follows one sequence token by token (decoding with a KV cache);
:func:`cursor_features` maps a whole sequence or a batch (training, prompts).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from notewave.errors import TokenizerError
from notewave.symbolic.vocab import DURATIONS, MAX_BAR_POSITIONS, METERS, Vocab, bar_positions

#: Values of the ``cursor`` feature: 0..MAX_BAR_POSITIONS + 1, then ``none``.
CURSOR_VALUES = MAX_BAR_POSITIONS + 2
#: Values of the ``left`` feature: 0..MAX_BAR_POSITIONS, then ``none``.
LEFT_VALUES = MAX_BAR_POSITIONS + 1
#: Rows of the model's cursor embedding table: the ``cursor`` rows (with ``none``), then
#: the ``left`` rows (with ``none``).
CURSOR_ROWS = CURSOR_VALUES + 1 + LEFT_VALUES + 1
NONE = (CURSOR_VALUES, CURSOR_VALUES + 1 + LEFT_VALUES)
#: Pitches of other tracks given at an onset (the ``harmony`` columns).
HARMONY_SLOTS = 6
#: Rows of the harmony part of the table, after :data:`CURSOR_ROWS`: 128 pitches, then ``none``.
HARMONY_ROWS = 129
HARMONY_NONE = CURSOR_ROWS + 128
#: Columns of a feature row: ``cursor``, ``left``, then the harmony slots.
COLUMNS = 2 + HARMONY_SLOTS
#: The feature row of a token outside a track segment (every column ``none``).
NONE_ROW = (*NONE, *(HARMONY_NONE,) * HARMONY_SLOTS)


class CursorTracker:
    """Follows a multitrack token sequence and gives each token's cursor feature.

    Args:
        vocab: the tokenizer's vocabulary.

    ``feed(token) -> (cursor_row, left_row, harmony_row * HARMONY_SLOTS)`` returns the
    :data:`COLUMNS` rows of the embedding table for the token just read (a model without the
    harmony part reads the first two). The state (all private): the tracks' instruments (from
    the header), the current bar's length, each track's latest note end from the current bar
    line, the notes of every bar so far, the current track, onset and cursor, and the queue of
    fill slots (bar length, carry-over, bar) not yet written.

    Raises:
        TokenizerError: a vocabulary whose ``Vel`` ids do not follow its ``Pitch`` ids.
    """

    def __init__(self, vocab: Vocab):
        spans = vocab.spans
        self._bar, self._fill_start = vocab.bar_id, vocab["FillStart"]
        self._fill_end, self._fill = vocab["FillEnd"], vocab["Fill"]
        self._time_sig = (spans["TimeSig"].start, spans["TimeSig"].stop)
        self._track_ids = (spans["Track"].start, spans["Track"].stop)
        self._span_pos = (spans["Pos"].start, spans["Pos"].stop)
        self._note = (spans["Pitch"].start, spans["Vel"].stop)  # Pitch and Vel are adjacent kinds
        self._dur = (spans["Dur"].start, spans["Dur"].stop)
        if spans["Vel"].start != spans["Pitch"].stop:
            raise TokenizerError("the vocabulary must list Vel right after Pitch")
        self._bar_length = 48  # the current bar's, in positions
        self._bars = 0
        self._busy: dict[int, int] = {}  # track -> latest note end from the current bar line
        self._track = -1  # inside a track segment: its track; else -1
        self._pos = 0
        self._cursor = 0
        self._length = 48  # the length of the segment's bar (a fill's: its slot's)
        self._in_fill = False
        self._slots: deque[tuple[int, int, int]] = deque()  # queued fill slots: (length, carry, bar)
        self._program, self._drums = (spans["Program"].start, spans["Program"].stop), vocab["Drums"]
        self._pitch0 = spans["Pitch"].start
        self._is_drum: list[bool] = []  # per track, from the header
        self._notes: list[list[tuple[int, int, int, int]]] = [[]]  # per bar: (track, start, end, pitch)
        self._bar_index = 0  # the bar whose notes a segment writes or reads (a fill's: its slot's)
        self._pitch = 0
        self._harmony: tuple[int, ...] = (HARMONY_NONE,) * HARMONY_SLOTS

    def _row(self) -> tuple[int, ...]:
        cursor = min(self._cursor, CURSOR_VALUES - 1)
        left = min(max(self._length - self._cursor, 0), LEFT_VALUES - 1)
        return (cursor, CURSOR_VALUES + 1 + left, *self._harmony)

    def _sounding(self) -> tuple[int, ...]:
        """Harmony rows: pitches of the other pitched tracks sounding at the current onset."""
        notes, pos, track = self._notes[self._bar_index], self._pos, self._track
        pitches = sorted({p for tr, a, b, p in notes if tr != track and a <= pos < b}, reverse=True)
        rows = [CURSOR_ROWS + p for p in pitches[:HARMONY_SLOTS]]
        return (*rows, *[HARMONY_NONE] * (HARMONY_SLOTS - len(rows)))

    def feed(self, token: int) -> tuple[int, ...]:
        """Read one id; the feature rows of that token (see the class docstring)."""
        t = int(token)
        if self._track >= 0:
            if self._span_pos[0] <= t < self._span_pos[1]:
                self._pos = t - self._span_pos[0]
                self._harmony = self._sounding()
                return self._row()
            if self._note[0] <= t < self._note[1]:
                if t < self._note[0] + 128:
                    self._pitch = t - self._pitch0
                return self._row()
            if self._dur[0] <= t < self._dur[1]:
                end = self._pos + DURATIONS[t - self._dur[0]]
                self._cursor = max(self._cursor, end)
                if not self._in_fill:
                    self._busy[self._track] = self._cursor
                if not self._drum_track():
                    self._notes[self._bar_index].append((self._track, self._pos, end, self._pitch))
                return self._row()
        self._harmony = (HARMONY_NONE,) * HARMONY_SLOTS
        if self._track_ids[0] <= t < self._track_ids[1]:
            self._track = t - self._track_ids[0]
            self._pos = 0
            if self._in_fill:
                slot = self._slots.popleft() if self._slots else (self._bar_length, 0, len(self._notes) - 1)
                self._length, self._cursor, self._bar_index = slot
            else:
                self._length, self._cursor = self._bar_length, self._busy.get(self._track, 0)
                self._bar_index = len(self._notes) - 1
            return self._row()
        if t == self._fill and self._track >= 0:
            self._slots.append((self._bar_length, self._busy.get(self._track, 0), len(self._notes) - 1))
        elif t == self._bar:
            if self._bars:
                length = self._bar_length
                self._busy = {k: v - length for k, v in self._busy.items() if v > length}
                held = [(tr, a - length, b - length, p) for tr, a, b, p in self._notes[-1] if b > length]
                self._notes.append(held)
            self._bars += 1
            self._in_fill = False
        elif self._time_sig[0] <= t < self._time_sig[1]:
            self._bar_length = bar_positions(*METERS[t - self._time_sig[0]])
        elif self._program[0] <= t < self._program[1] or t == self._drums:
            self._is_drum.append(t == self._drums)
        elif t == self._fill_start:
            self._in_fill = True
        elif t == self._fill_end:
            self._in_fill = False
        self._track = -1
        return (*NONE, *self._harmony)

    def _drum_track(self) -> bool:
        return self._track < len(self._is_drum) and self._is_drum[self._track]


def cursor_features(vocab: Vocab, ids: Sequence[int] | Iterable[Sequence[int]]) -> np.ndarray:
    """Feature rows of a sequence (int64 ``[T, COLUMNS]``) or of a batch of equal-length
    sequences (int64 ``[B, T, COLUMNS]``), each read from its start (see the module docstring)."""
    array = np.asarray(ids, dtype=np.int64)
    if array.ndim == 1:
        tracker = CursorTracker(vocab)
        return np.asarray([tracker.feed(t) for t in array.tolist()], dtype=np.int64).reshape(-1, COLUMNS)
    if not len(array):
        return np.zeros((*array.shape, COLUMNS), dtype=np.int64)
    return np.stack([cursor_features(vocab, row) for row in array])


def cursor_tensor(vocab: Vocab, ids: torch.Tensor) -> torch.Tensor:
    """:func:`cursor_features` of a batch of ids (int64 ``[B, T]``) as an int64 ``[B, T, COLUMNS]``
    tensor on the ids' device."""
    return torch.from_numpy(cursor_features(vocab, ids.cpu().numpy())).to(ids.device)

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


class CursorTracker:
    """Follows a multitrack token sequence and gives each token's cursor feature.

    Args:
        vocab: the tokenizer's vocabulary.

    ``feed(token) -> (cursor_row, left_row)`` returns the two rows of the embedding table
    (see :data:`CURSOR_ROWS`) for the token just read. The state (all private): the current
    bar's length, each track's latest note end from the current bar line, the current track,
    onset and cursor, and the queue of fill slots (bar length, carry-over) not yet written.

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
        self._slots: deque[tuple[int, int]] = deque()  # queued fill slots: (bar length, carry-over)

    def _row(self) -> tuple[int, int]:
        cursor = min(self._cursor, CURSOR_VALUES - 1)
        left = min(max(self._length - self._cursor, 0), LEFT_VALUES - 1)
        return cursor, CURSOR_VALUES + 1 + left

    def feed(self, token: int) -> tuple[int, int]:
        """Read one id; the feature rows of that token (see the class docstring)."""
        t = int(token)
        if self._track >= 0:
            if self._span_pos[0] <= t < self._span_pos[1]:
                self._pos = t - self._span_pos[0]
                return self._row()
            if self._note[0] <= t < self._note[1]:
                return self._row()
            if self._dur[0] <= t < self._dur[1]:
                self._cursor = max(self._cursor, self._pos + DURATIONS[t - self._dur[0]])
                if not self._in_fill:
                    self._busy[self._track] = self._cursor
                return self._row()
        if self._track_ids[0] <= t < self._track_ids[1]:
            self._track = t - self._track_ids[0]
            self._pos = 0
            if self._in_fill:
                self._length, self._cursor = self._slots.popleft() if self._slots else (self._bar_length, 0)
            else:
                self._length, self._cursor = self._bar_length, self._busy.get(self._track, 0)
            return self._row()
        if t == self._fill and self._track >= 0:
            self._slots.append((self._bar_length, self._busy.get(self._track, 0)))
        elif t == self._bar:
            if self._bars:
                length = self._bar_length
                self._busy = {k: v - length for k, v in self._busy.items() if v > length}
            self._bars += 1
            self._in_fill = False
        elif self._time_sig[0] <= t < self._time_sig[1]:
            self._bar_length = bar_positions(*METERS[t - self._time_sig[0]])
        elif t == self._fill_start:
            self._in_fill = True
        elif t == self._fill_end:
            self._in_fill = False
        self._track = -1
        return NONE


def cursor_features(vocab: Vocab, ids: Sequence[int] | Iterable[Sequence[int]]) -> np.ndarray:
    """Cursor feature rows of a sequence (int64 ``[T, 2]``) or of a batch of equal-length
    sequences (int64 ``[B, T, 2]``), each read from its start (see the module docstring)."""
    array = np.asarray(ids, dtype=np.int64)
    if array.ndim == 1:
        tracker = CursorTracker(vocab)
        return np.asarray([tracker.feed(t) for t in array.tolist()], dtype=np.int64).reshape(-1, 2)
    if not len(array):
        return np.zeros((*array.shape, 2), dtype=np.int64)
    return np.stack([cursor_features(vocab, row) for row in array])


def cursor_tensor(vocab: Vocab, ids: torch.Tensor) -> torch.Tensor:
    """:func:`cursor_features` of a batch of ids (int64 ``[B, T]``) as an int64 ``[B, T, 2]``
    tensor on the ids' device."""
    return torch.from_numpy(cursor_features(vocab, ids.cpu().numpy())).to(ids.device)

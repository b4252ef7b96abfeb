"""Density guidance: a logit bias that keeps a written track from closing its bar too early.

In dense multitrack grooves the composer sometimes writes a bar of a busy track (a drum kit
with 20 hits a bar, a comping piano) with a handful of notes and closes it: an infilled latin
groove came back with its drums at 4 notes a bar where the bars around held 24. MMM
(Ens & Pasquier 2020, MIDI-GPT) controls this with note-density tokens learned in training;
this guide does it at decoding time, with no retraining. :class:`DensityGuide` takes, for
the track being written, its mean number of notes in the bars around where it plays (the
:data:`DENSITY_BARS` nearest bars on each side that count: the slots an infill rewrites and the
bars a continuation writes do not, so the guide never follows its own output upward). Once the
track has started playing in the bar, and while the bar holds fewer than :data:`DENSITY_SHARE`
of that mean (:data:`CONTINUE_SHARE` in a continuation), the logits of the ids that close the
track's segment (``FillEnd``, the next ``Track``, ``Bar``, ``EOS``) are lowered by ``strength``
nats; nothing once the bar holds its share.
Whether a track plays in a bar at all stays the model's choice (and the grammar's
``keep_playing`` rule), what it plays too; closing stays possible (a soft bias; the grammar
mask is unchanged, so every sample still decodes), and ``strength=0`` is the model alone.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import torch

from notewave.errors import ConfigError
from notewave.symbolic.decode import Bias
from notewave.symbolic.grammar import State
from notewave.symbolic.guide import Surroundings, nearest_bars
from notewave.symbolic.piece import BAR, TRACK, Piece
from notewave.symbolic.vocab import Vocab

DENSITY_BARS = 4  # nearest counted bars each side of the bar being written that set a track's density
#: Share of the surrounding bars' mean notes per bar under which closing is lowered: infill's (the
#: default) and a continuation's. Picked with the default strength
#: (:data:`notewave.symbolic.defaults.DENSITY`) on the validation pieces (3 per style, 12 styles): in
#: fills the model writes about half the notes around in the dense MMA styles (share 0.5 left them
#: there, 0.8 brings them to the real bars' median); a continuation is already about as dense as
#: the real one, and a floor of 0.8 pushed its median to 1.19 (real 1.0), 0.5 to 1.08.
DENSITY_SHARE = 0.8
CONTINUE_SHARE = 0.5


class DensityGuide(Surroundings):
    """Biases against closing a playing track's bar before it holds its share of the notes around it.

    Args:
        vocab: the tokenizer's vocabulary.
        strength: nats taken from the closing ids of a playing track under its share (>= 0).
        skip: ``(bar, track)`` slots (0-based bars) that do not count as the music around: the
            slots an infill rewrites.
        bars: nearest counted bars each side that set the density.
        until: bars from this one on (0-based) do not count: a continuation's new bars.
        share: the share of the mean under which closing is lowered (0 < share <= 1).

    Raises:
        ConfigError: a negative or non-finite ``strength``, ``bars < 1``, a share outside (0, 1].
    """

    name = "density"
    default_bars = DENSITY_BARS

    def __init__(
        self,
        vocab: Vocab,
        strength: float,
        skip: Collection[tuple[int, int]] = (),
        bars: int = DENSITY_BARS,
        until: int | None = None,
        share: float = DENSITY_SHARE,
    ):
        super().__init__(vocab, strength, bars, skip, until)
        if not 0 < share <= 1:
            raise ConfigError(f"density share must be in (0, 1], got {share}")
        self.share = float(share)
        closing = [vocab["FillEnd"], vocab.bar_id, vocab.eos_id]
        closing += list(range(vocab.spans["Track"].start, vocab.spans["Track"].stop))
        self.closing = torch.tensor(closing)
        self.penalty = torch.zeros(len(vocab))
        self.penalty[self.closing] = -self.strength

    def targets(self, piece: Piece, bar: int) -> np.ndarray:
        """Float64 ``[tracks]``: each track's mean notes per bar over the bars where it plays among
        the :attr:`bars` nearest counted bars of ``piece`` on each side of ``bar`` (a counted bar
        is inside the piece, before ``until``, not ``bar`` itself and not a skipped slot); 0 for a
        track that plays in none of them."""
        end = self.end(piece)
        out = np.zeros(piece.tracks)
        for track in range(piece.tracks):
            counted = nearest_bars(bar, end, lambda b: (b, track) not in self.skip, self.bars)  # noqa: B023
            rows = piece.notes[piece.notes[:, TRACK] == track, BAR]
            mine = rows[np.isin(rows, counted)]
            if len(mine):
                out[track] = len(mine) / len(np.unique(mine))
        return out

    def for_bar(self, piece: Piece, bar: int) -> Bias | None:
        """The bias function for writing ``bar`` (0-based) given the music of ``piece`` around it.

        The function counts the notes it sees close (each ``"note"`` state it is asked about) per
        track, so one function serves one decoding run in order; it returns float
        ``[vocab size]`` (``-strength`` on the closing ids) on a ``"note"`` state of a track under
        its share, else ``None``. ``None`` at strength 0 or with no track playing around.
        """
        if self.strength == 0:
            return None
        targets = self.targets(piece, bar) * self.share
        if not (targets > 0).any():
            return None
        written = np.zeros(len(targets), dtype=np.int64)
        last: list[State | None] = [None]

        def density(state: State) -> torch.Tensor | None:
            track = state.track
            if not 0 <= track < len(targets) or state.phase != "note":
                return None
            if state != last[0]:
                written[track] += 1  # a note (Pitch Vel Dur) has just closed
            last[0] = state
            if written[track] >= targets[track]:
                return None
            return self.penalty

        return density

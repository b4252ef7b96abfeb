"""Grammar-constrained, KV-cached decoding of multitrack tokens with a :class:`MidiLM`.

:class:`Decoder` feeds a context once, then samples one id at a time under the grammar
mask (:mod:`notewave.symbolic.grammar`); an id the grammar forces (the only one allowed)
is taken without sampling. It stops when a caller's condition holds or the model's
context is full (the caller then builds a shorter window and goes on). The steps after the
context use weight-only int8 copies of the matrices (:mod:`notewave.core.int8`) where torch
has the kernel: a step reads a quarter of the bytes (the bench's decode table has both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from notewave.core.decode_step import BlockStep, linear_fn, one_thread
from notewave.core.int8 import int8_available
from notewave.core.sampling import sample
from notewave.core.transformer import KVCache
from notewave.errors import ConfigError
from notewave.symbolic.cursor import CursorTracker
from notewave.symbolic.grammar import Grammar, State
from notewave.symbolic.model import MidiLM

#: A logit bias by grammar state: float ``[vocab size]`` added to the logits, or ``None``.
Bias = Callable[[State], "torch.Tensor | None"]


@dataclass
class Sampling:
    """Sampling settings: ``temperature`` (> 0), ``top_k``, ``top_p`` (nucleus, Holtzman et al.
    2020) and the random ``generator``."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = 0.95
    generator: torch.Generator | None = None


class MidiStep:
    """``step(ids, cursor, cache)``: the logits ``MidiLM.forward(ids, cache, cursor)`` gives for one
    new position (ids int64 ``[B, 1]``, cursor int64 ``[B, 1, COLUMNS]`` or ``None``, logits float
    ``[B, 1, vocab]``), through :class:`notewave.core.decode_step.BlockStep`: the same operations
    without the module calls. For a model in eval mode; the cache must hold the earlier positions.
    With ``int8`` the matrix products (blocks and head) use weight-only int8 copies: close to,
    not equal to, ``forward`` (raises ConfigError where torch lacks the kernel).
    """

    def __init__(self, model: MidiLM, int8: bool = False):
        self.embedding = model.tok_emb.weight
        self.cursor = None if model.cursor_emb is None else model.cursor_emb.weight
        self.columns = model.config.feature_columns
        self.blocks = BlockStep(model.transformer, int8=int8)
        self.head = linear_fn(model.head, int8)

    @torch.no_grad()
    def __call__(self, ids: torch.Tensor, cursor: torch.Tensor | None, cache: KVCache) -> torch.Tensor:
        """Logits float ``[B, 1, vocab]`` of ids int64 ``[B, 1]`` (cursor rows int64 ``[B, 1, COLUMNS]``).

        Raises:
            ConfigError: no cursor rows for a model that reads them; an empty or full cache.
        """
        x = F.embedding(ids, self.embedding)
        if self.cursor is not None:
            if cursor is None:
                raise ConfigError("this composer reads cursor features: pass the cursor rows")
            x = x + F.embedding(cursor[..., : self.columns], self.cursor).sum(dim=-2)
        return self.head(self.blocks(x, cache))


class Decoder:
    """One sequence being decoded.

    Args:
        model: the composer's transformer (in eval mode: the steps after a context then go
            through the lean :class:`MidiStep`).
        grammar: the token grammar of this piece's tracks.
        sampling: sampling settings.
        int8: the steps after the context with int8 weight copies (default: where torch has
            the kernel, :func:`notewave.core.int8.int8_available`); ``False``: the fp32 weights.

    The steps of :meth:`run` use one torch thread (:func:`notewave.core.decode_step.one_thread`;
    the context itself is read with all of them).
    """

    def __init__(self, model: MidiLM, grammar: Grammar, sampling: Sampling, int8: bool | None = None):
        self.model = model
        self.int8 = int8_available() if int8 is None else int8
        self.grammar = grammar
        self.sampling = sampling
        self.cache = None
        self.logits: torch.Tensor | None = None
        self.cursor: CursorTracker | None = None
        self.step: MidiStep | None = None

    @property
    def room(self) -> int:
        """Tokens that still fit in the model's context."""
        return self.model.context - (self.cache.length if self.cache is not None else 0)

    @torch.no_grad()
    def start(self, context: Sequence[int]) -> None:
        """Forget everything and read ``context`` (ids; only the last ``context - 1`` are kept if longer,
        so that at least one id can follow)."""
        everything = list(context)
        ids = everything[-(self.model.context - 1) :]
        self.cache = self.model.new_cache(1)
        cursor = None
        if self.model.config.cursor:  # read from the start, so that a cut context keeps its bars
            self.cursor = CursorTracker(self.grammar.vocab)
            rows = [self.cursor.feed(t) for t in everything]
            cursor = torch.tensor([rows[len(rows) - len(ids) :]])
        self.logits = self.model(torch.tensor([ids]), self.cache, cursor)[:, -1]
        if self.model.training:
            self.step = None
        elif self.step is None:  # built once per Decoder (the int8 copies take some 50 ms)
            self.step = MidiStep(self.model, self.int8)

    @torch.no_grad()
    def feed(self, token: int) -> None:
        """Append one id to the context (it must fit: :attr:`room` > 0)."""
        cursor = None if self.cursor is None else torch.tensor([[self.cursor.feed(token)]])
        ids = torch.tensor([[int(token)]])
        if self.step is not None:
            self.logits = self.step(ids, cursor, self.cache)[:, -1]
        else:
            self.logits = self.model(ids, self.cache, cursor)[:, -1]

    def choose(self, state: State, bias: Bias | None = None) -> int:
        """The next id under the grammar: forced when only one is allowed, else sampled (from the
        logits plus ``bias(state)`` when that gives a float ``[vocab size]`` tensor)."""
        allowed = self.grammar.mask(state)
        forced = torch.nonzero(allowed)
        if len(forced) == 1:
            return int(forced[0, 0])
        s = self.sampling
        logits = self.logits
        if bias is not None and (extra := bias(state)) is not None:
            logits = logits + extra
        return int(sample(logits, s.temperature, s.top_k, s.top_p, allowed[None], s.generator)[0])

    def run(
        self, state: State, stop: Callable[[int, State], bool], limit: int, bias: Bias | None = None
    ) -> tuple[list[int], State, bool]:
        """Sample ids from ``state`` until ``stop(id, new_state)`` is true (that id is returned
        last), ``limit`` ids were made, or the context is full. ``bias``: see :meth:`choose`
        (e.g. :meth:`notewave.symbolic.guide.ConsonanceGuide.for_bar`).

        Returns:
            ``(ids, state, stopped)``: ``stopped`` is false when the context or ``limit`` ended it.
        """
        out: list[int] = []
        with one_thread():  # a step is too small to split: a second thread only waits (see one_thread)
            while len(out) < limit:
                token = self.choose(state, bias)
                state = self.grammar.follow(state, token)
                out.append(token)
                if stop(token, state):
                    return out, state, True
                if self.room <= 0:
                    break
                self.feed(token)
        return out, state, False

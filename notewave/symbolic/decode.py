"""Grammar-constrained, KV-cached decoding of multitrack tokens with a :class:`MidiLM`.

:class:`Decoder` feeds a context once, then samples one id at a time under the grammar
mask (:mod:`notewave.symbolic.grammar`); an id the grammar forces (the only one allowed)
is taken without sampling. It stops when a caller's condition holds or the model's
context is full (the caller then builds a shorter window and goes on).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from notewave.core.sampling import sample
from notewave.symbolic.grammar import Grammar, State
from notewave.symbolic.model import MidiLM


@dataclass
class Sampling:
    """Sampling settings: ``temperature`` (> 0), ``top_k``, ``top_p`` (nucleus, Holtzman et al.
    2020) and the random ``generator``."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = 0.95
    generator: torch.Generator | None = None


class Decoder:
    """One sequence being decoded.

    Args:
        model: the composer's transformer (in eval mode).
        grammar: the token grammar of this piece's tracks.
        sampling: sampling settings.
    """

    def __init__(self, model: MidiLM, grammar: Grammar, sampling: Sampling):
        self.model = model
        self.grammar = grammar
        self.sampling = sampling
        self.cache = None
        self.logits: torch.Tensor | None = None

    @property
    def room(self) -> int:
        """Tokens that still fit in the model's context."""
        return self.model.context - (self.cache.length if self.cache is not None else 0)

    @torch.no_grad()
    def start(self, context: Sequence[int]) -> None:
        """Forget everything and read ``context`` (ids; only the last ``context - 1`` are kept if longer,
        so that at least one id can follow)."""
        ids = list(context)[-(self.model.context - 1) :]
        self.cache = self.model.new_cache(1)
        self.logits = self.model(torch.tensor([ids]), self.cache)[:, -1]

    @torch.no_grad()
    def feed(self, token: int) -> None:
        """Append one id to the context (it must fit: :attr:`room` > 0)."""
        self.logits = self.model(torch.tensor([[int(token)]]), self.cache)[:, -1]

    def choose(self, state: State) -> int:
        """The next id under the grammar: forced when only one is allowed, else sampled."""
        allowed = self.grammar.mask(state)
        forced = torch.nonzero(allowed)
        if len(forced) == 1:
            return int(forced[0, 0])
        s = self.sampling
        return int(sample(self.logits, s.temperature, s.top_k, s.top_p, allowed[None], s.generator)[0])

    def run(
        self, state: State, stop: Callable[[int, State], bool], limit: int
    ) -> tuple[list[int], State, bool]:
        """Sample ids from ``state`` until ``stop(id, new_state)`` is true (that id is returned
        last), ``limit`` ids were made, or the context is full.

        Returns:
            ``(ids, state, stopped)``: ``stopped`` is false when the context or ``limit`` ended it.
        """
        out: list[int] = []
        while len(out) < limit:
            token = self.choose(state)
            state = self.grammar.follow(state, token)
            out.append(token)
            if stop(token, state):
                return out, state, True
            if self.room <= 0:
                break
            self.feed(token)
        return out, state, False

"""The REMI token grammar, used to mask logits so that every sample decodes to valid MIDI.

In notewave's REMI (one stream, programs on) a bar reads::

    Bar [TimeSig] ( Position [Tempo] ( Program Pitch Velocity Duration )* )* ... EOS

so ``Pitch`` is always followed by ``Velocity`` then ``Duration``, a ``Program`` by a
``Pitch`` (``PitchDrum`` for program -1), and ``Position`` values strictly increase
within a bar and stay below the bar's length (numerator x 8 positions, the finest beat
resolution, per beat of the time signature's denominator). Grammar-constrained decoding
of the same kind is used by SkyTNT's midi-model; Huang & Yang 2020 define REMI.

For a BPE tokenizer an id stands for several REMI tokens; it is allowed when the whole
run of tokens is accepted from the current state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import torch

from notewave.symbolic.tokenizer import MidiTokenizer

POSITIONS_PER_BEAT = 8  # max(REMI beat_res) in notewave.symbolic.tokenizer.REMI_OPTIONS


@dataclass(frozen=True)
class State:
    """Where the grammar stands: the last token kind, the current position and bar length."""

    last: str = "Start"
    position: int = -1
    bar_positions: int = 4 * POSITIONS_PER_BEAT
    drum: bool = False


def parse(token: str) -> tuple[str, str]:
    kind, _, value = token.partition("_")
    return kind, value


class RemiGrammar:
    """Accepts or rejects REMI tokens one at a time, and builds logit masks.

    Args:
        tokenizer: the model's tokenizer.
        allow_eos: whether ``EOS`` may be sampled (after a note or a bar line).
        allow_tempo: whether ``Tempo`` tokens may be sampled.
        allow_time_signature: whether ``TimeSig`` tokens may be sampled.
        programs: if given, only these programs may appear (e.g. the prompt's instruments).
    """

    def __init__(
        self,
        tokenizer: MidiTokenizer,
        allow_eos: bool = False,
        allow_tempo: bool = False,
        allow_time_signature: bool = False,
        programs: Iterable[int] | None = None,
    ):
        self.tokenizer = tokenizer
        self.allow_eos = allow_eos
        self.allow_tempo = allow_tempo
        self.allow_time_signature = allow_time_signature
        self.programs = None if programs is None else {int(p) for p in programs}
        self._tokens = [[parse(t) for t in tokenizer.base_tokens(i)] for i in range(tokenizer.vocab_size)]
        self._masks: dict[State, torch.Tensor] = {}

    # ---- single REMI tokens -----------------------------------------------------------
    def step(self, state: State, kind: str, value: str) -> State | None:
        """The state after ``kind_value``, or ``None`` when the token may not follow ``state``."""
        last = state.last
        new_bar = kind == "Bar" and last in ("Start", "Bar", "TimeSig", "Tempo", "Duration")
        if new_bar:
            return replace(state, last="Bar", position=-1)
        if kind == "EOS":
            ok = self.allow_eos and last in ("Bar", "TimeSig", "Tempo", "Duration")
            return replace(state, last="EOS") if ok else None
        if kind == "TimeSig":
            if not (self.allow_time_signature and last == "Bar"):
                return None
            num, _, den = value.partition("/")
            return replace(state, last="TimeSig", bar_positions=int(num) * POSITIONS_PER_BEAT)
        if kind == "Position":
            pos = int(value)
            if last in ("Bar", "TimeSig", "Tempo", "Duration") and state.position < pos < state.bar_positions:
                return replace(state, last="Position", position=pos)
            return None
        if kind == "Tempo":
            return replace(state, last="Tempo") if self.allow_tempo and last == "Position" else None
        if kind == "Program":
            program = int(value)
            if last not in ("Position", "Tempo", "Duration") or state.position < 0:
                return None
            if self.programs is not None and program not in self.programs:
                return None
            return replace(state, last="Program", drum=program == -1)
        if kind == "Pitch":
            return replace(state, last="Pitch") if last == "Program" and not state.drum else None
        if kind == "PitchDrum":
            return replace(state, last="Pitch") if last == "Program" and state.drum else None
        if kind == "Velocity":
            return replace(state, last="Velocity") if last == "Pitch" else None
        if kind == "Duration":
            return replace(state, last="Duration") if last == "Velocity" else None
        return None  # PAD, BOS, MASK, conditioning tokens, a Bar in the middle of a note

    # ---- ids --------------------------------------------------------------------------
    def advance(self, state: State, token_id: int) -> State | None:
        """The state after the id (all its REMI tokens), or ``None`` if it is not allowed."""
        tokens = self._tokens[token_id] if 0 <= token_id < len(self._tokens) else []
        if not tokens:
            return None
        current: State | None = state
        for kind, value in tokens:
            current = self.step(current, kind, value)
            if current is None:
                return None
        return current

    def mask(self, state: State) -> torch.Tensor:
        """Bool ``[vocab_size]``: ``True`` where the id may follow ``state`` (cached per state)."""
        if state not in self._masks:
            allowed = [self.advance(state, i) is not None for i in range(len(self._tokens))]
            self._masks[state] = torch.tensor(allowed, dtype=torch.bool)
        return self._masks[state]

    def state_after(self, ids: Iterable[int], state: State | None = None) -> State:
        """Follow a (trusted) prompt leniently: the state after its last token, tracking the
        time signature in force; tokens the grammar would refuse are taken as they come."""
        current = state or State()
        for token_id in ids:
            for kind, value in self._tokens[token_id] if token_id < len(self._tokens) else []:
                if kind == "Bar":
                    current = replace(current, last="Bar", position=-1)
                elif kind == "TimeSig":
                    num = int(value.partition("/")[0])
                    current = replace(current, last="TimeSig", bar_positions=num * POSITIONS_PER_BEAT)
                elif kind == "Position":
                    current = replace(current, last="Position", position=int(value))
                elif kind == "Program":
                    current = replace(current, last="Program", drum=value == "-1")
                elif kind in ("Pitch", "PitchDrum"):
                    current = replace(current, last="Pitch")
                elif kind in ("Tempo", "Velocity", "Duration", "EOS"):
                    current = replace(current, last=kind)
        return current


def grammar_errors(tokenizer: MidiTokenizer, ids: Iterable[int]) -> list[str]:
    """Violations of the REMI grammar in a generated body (after the conditioning prefix).

    Tempo, time-signature and EOS tokens are accepted here; a sequence that ends inside a
    note (``Program``/``Pitch``/``Velocity`` without its ``Duration``) counts as an error.
    """
    grammar = RemiGrammar(tokenizer, allow_eos=True, allow_tempo=True, allow_time_signature=True)
    state = State()
    errors = []
    for index, token_id in enumerate(ids):
        new = grammar.advance(state, int(token_id))
        if new is None:
            errors.append(f"token {index} {tokenizer.token_name(int(token_id))!r} cannot follow {state.last}")
            new = grammar.state_after([int(token_id)], state)
        state = new
    if state.last in ("Program", "Pitch", "Velocity"):
        errors.append(f"sequence ends inside a note (after {state.last})")
    return errors

"""The multitrack token grammar, used to mask logits so that every sample decodes.

Inside a bar (see :mod:`notewave.symbolic.layout`)::

    Bar [TimeSig] [Tempo] Track_0 <events> Track_1 <events> ... Track_{T-1} <events>
    <events> = ( Pos_k ( Pitch_p Vel_v Dur_d )+ )*

with tracks in order, positions rising and inside the bar's length (12 per quarter),
pitches rising within one onset (no duplicate notes), pitched tracks inside the piano
range, and in a fill ``FillStart Track_i <events> FillEnd``. Every sequence the mask lets
through parses to notes on the bar grid: the 100 % decodability that grammar-constrained
sampling guarantees (the same idea as SkyTNT's midi-model masks over REMI).

Masks are built from the kinds' id ranges (:class:`notewave.symbolic.vocab.Span`) and cached
per state, so a step costs one dictionary look-up once a state has been seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import torch

from notewave.errors import ConfigError
from notewave.symbolic.vocab import METERS, PITCH_RANGE, Vocab, bar_positions


@dataclass(frozen=True)
class State:
    """Where the grammar stands.

    Attributes:
        phase: ``"bar"`` (after ``Bar``/``TimeSig``/``Tempo``), ``"segment"`` (after ``Track_i``),
            ``"pos"``, ``"pitch"``, ``"vel"``, ``"note"`` (after a ``Dur``) or ``"end"``.
        track: current track; pos: current position (-1 before the first ``Pos`` of a segment);
        pitch: last pitch at this position (-1 none); bar_length: positions in the bar;
        fill: inside ``FillStart ... FillEnd``; must_play: this fill must hold at least one
        onset (``FillEnd`` only after a note); meter_seen / tempo_seen: the bar already has its
        ``TimeSig`` / ``Tempo``.
    """

    phase: str = "bar"
    track: int = -1
    pos: int = -1
    pitch: int = -1
    bar_length: int = 48
    fill: bool = False
    must_play: bool = False
    meter_seen: bool = False
    tempo_seen: bool = False


class Grammar:
    """Accepts multitrack tokens one at a time and builds logit masks.

    Args:
        vocab: the tokenizer's vocabulary.
        programs: GM program of each track in the header (``-1`` drums).
        allow_eos: whether ``EOS`` may end a bar's last track.
        allow_meter, allow_tempo: whether a bar may open with ``TimeSig`` / ``Tempo``.
        active: tracks that must play (at least one onset) in every bar they are written in, outside
            fills: how a continuation keeps every part that plays at the end of the prompt going.
        ranges: pitch bounds of some tracks, ``{track: (low, high)}`` (MIDI numbers, inclusive),
            inside the format's own: the written range of a part being added (a bass voice, a
            flute), so that a new part starts and stays in its register, or a given track's own
            register in a continuation or infill (:func:`~notewave.symbolic.parts.given_ranges`).

    Raises:
        ConfigError: a range that is empty, outside 0..127, or of a track the header lacks.
    """

    def __init__(
        self,
        vocab: Vocab,
        programs: Sequence[int],
        allow_eos: bool = False,
        allow_meter: bool = False,
        allow_tempo: bool = False,
        active: Iterable[int] = (),
        ranges: Mapping[int, tuple[int, int]] | None = None,
    ):
        self.vocab = vocab
        self.active = frozenset(int(t) for t in active)
        self.programs = [int(p) for p in programs]
        self.ranges = {int(t): (int(lo), int(hi)) for t, (lo, hi) in (ranges or {}).items()}
        # each track's pitch bounds (inclusive): the format's (drums any key), narrowed by ``ranges``
        self.bounds = [(0, 127) if p < 0 else PITCH_RANGE for p in self.programs]
        for track, (low, high) in self.ranges.items():
            if 0 <= track < len(self.bounds):
                floor, top = self.bounds[track]
                self.bounds[track] = (max(low, floor), min(high, top))
            if not 0 <= track < len(self.bounds) or self.bounds[track][0] > self.bounds[track][1]:
                raise ConfigError(
                    f"pitch range {low}..{high} of track {track} leaves no pitch of a header track "
                    f"(pitched tracks: {PITCH_RANGE[0]}..{PITCH_RANGE[1]})"
                )
        self.allow_eos = allow_eos
        self.allow_meter = allow_meter
        self.allow_tempo = allow_tempo
        self._masks: dict[State, torch.Tensor] = {}

    @property
    def tracks(self) -> int:
        return len(self.programs)

    def bar_state(self, meter: tuple[int, int]) -> State:
        """The state right after a ``Bar`` in ``meter``."""
        return State("bar", bar_length=bar_positions(*meter))

    def segment_state(
        self, track: int, meter: tuple[int, int], fill: bool = False, must_play: bool = False
    ) -> State:
        """The state right after ``Track_i`` (in a fill: after ``FillStart Track_i``; ``must_play``:
        the fill may not end before its first note)."""
        return State("segment", track=track, bar_length=bar_positions(*meter), fill=fill, must_play=must_play)

    # ---- the rules --------------------------------------------------------------------
    def _ends(self, state: State) -> list[int]:
        """Ids that close the current track segment."""
        vocab = self.vocab
        if state.fill:
            return [vocab["FillEnd"]]
        if state.track + 1 < self.tracks:
            return [vocab.spans["Track"].id(state.track + 1)]
        return [vocab.bar_id] + ([vocab.eos_id] if self.allow_eos else [])

    def _pitches(self, state: State) -> range:
        if not 0 <= state.track < self.tracks:
            return range(0)  # a track the header lacks: no note may follow
        low, high = self.bounds[state.track]
        return range(max(low, state.pitch + 1), high + 1)

    def mask(self, state: State) -> torch.Tensor:
        """Bool ``[vocab size]``, ``True`` where an id may follow ``state`` (cached per state)."""
        cached = self._masks.get(state)
        if cached is not None:
            return cached
        spans = self.vocab.spans
        allowed = torch.zeros(len(self.vocab), dtype=torch.bool)
        phase = state.phase
        if phase == "bar":
            if self.allow_meter and not state.meter_seen and not state.tempo_seen:
                allowed[spans["TimeSig"].start : spans["TimeSig"].stop] = True
            if self.allow_tempo and not state.tempo_seen:
                allowed[spans["Tempo"].start : spans["Tempo"].stop] = True
            allowed[spans["Track"].id(0)] = True
        elif phase in ("segment", "note"):
            first = spans["Pos"].start + state.pos + 1
            allowed[first : spans["Pos"].start + state.bar_length] = True
            if phase == "note":
                pitches = self._pitches(state)
                if len(pitches):
                    allowed[spans["Pitch"].start + pitches.start : spans["Pitch"].start + pitches.stop] = True
            may_rest = not state.must_play if state.fill else state.track not in self.active
            if phase == "note" or may_rest:
                allowed[self._ends(state)] = True
        elif phase == "pos":
            pitches = self._pitches(state)
            allowed[spans["Pitch"].start + pitches.start : spans["Pitch"].start + pitches.stop] = True
        elif phase == "pitch":
            allowed[spans["Vel"].start : spans["Vel"].stop] = True
        elif phase == "vel":
            allowed[spans["Dur"].start : spans["Dur"].stop] = True
        self._masks[state] = allowed
        return allowed

    def advance(self, state: State, token: int) -> State | None:
        """The state after ``token``, or ``None`` when the grammar forbids it there."""
        if not 0 <= token < len(self.vocab) or not bool(self.mask(state)[token]):
            return None
        return self.follow(state, token)

    def follow(self, state: State, token: int) -> State:
        """The state after ``token`` without checking it (for trusted prompts)."""
        vocab, spans = self.vocab, self.vocab.spans
        kind = vocab.kind(token)
        if token == vocab.bar_id:
            return State("bar", bar_length=state.bar_length)
        if token in (vocab.eos_id, vocab["FillEnd"]):
            return replace(state, phase="end")
        if kind == "TimeSig":
            meter = METERS[token - spans["TimeSig"].start]
            return replace(state, bar_length=bar_positions(*meter), meter_seen=True)
        if kind == "Tempo":
            return replace(state, tempo_seen=True)
        if kind == "Track":
            return replace(state, phase="segment", track=token - spans["Track"].start, pos=-1, pitch=-1)
        if token == vocab["FillStart"]:
            return replace(state, phase="segment", fill=True, pos=-1, pitch=-1)
        if kind == "Pos":
            return replace(state, phase="pos", pos=token - spans["Pos"].start, pitch=-1)
        if kind == "Pitch":
            return replace(state, phase="pitch", pitch=token - spans["Pitch"].start)
        if kind == "Vel":
            return replace(state, phase="vel")
        if kind == "Dur":
            return replace(state, phase="note")
        return state

    def errors(self, ids: Iterable[int], state: State) -> list[str]:
        """Grammar violations of ``ids`` read from ``state`` (an empty list when all are allowed)."""
        out = []
        for index, token in enumerate(ids):
            new = self.advance(state, int(token))
            if new is None:
                out.append(
                    f"token {index} {self.vocab.name(int(token))!r} cannot follow phase {state.phase!r}"
                )
                new = self.follow(state, int(token))
            state = new
        if state.phase in ("pos", "pitch", "vel"):
            out.append(f"the sequence ends inside a note (phase {state.phase!r})")
        return out

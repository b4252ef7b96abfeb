"""The vocabulary of notewave's multitrack tokens (bar-major, MMM bar-fill).

Every token is ``Kind`` or ``Kind_value``; ids are assigned kind by kind in the order of
:data:`KINDS`, so each kind is one contiguous id range (grammar masks are slices). The
format is described in :mod:`notewave.symbolic.layout` and ``docs/tokens.md``.

Time is counted in *positions*: :data:`POSITIONS_PER_QUARTER` (12) per quarter note, which
holds 16th notes (3), eighth-note triplets (4) and 16th triplets (2) exactly. A bar of n/d
lasts ``n * 48 / d`` positions (4/4: 48, 6/8: 36, 4/2: 96).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from notewave.core.io import atomic_open
from notewave.errors import ConditioningError, TokenizerError

FORMAT = "notewave-multitrack"
FORMAT_VERSION = 1
TOKENIZER_FILE = "tokenizer.json"

POSITIONS_PER_QUARTER = 12
MAX_TRACKS = 16
DRUMS = -1  # the program number of a drum track
#: Meters with a ``TimeSig`` token, as (numerator, denominator).
METERS: tuple[tuple[int, int], ...] = (
    (1, 4),
    (2, 4),
    (3, 4),
    (4, 4),
    (5, 4),
    (6, 4),
    (7, 4),
    (2, 2),
    (3, 2),
    (4, 2),
    (3, 8),
    (5, 8),
    (6, 8),
    (7, 8),
    (9, 8),
    (12, 8),
)
MAX_BAR_POSITIONS = max(n * 4 * POSITIONS_PER_QUARTER // d for n, d in METERS)
PITCH_RANGE = (21, 108)  # piano range for pitched tracks (inclusive); drums use 0..127
VELOCITY_BINS = 16  # bin b holds MIDI velocities 8b..8b+7 and decodes to 8b+4
#: Duration bins in positions (a note's length is stored as the nearest bin).
DURATIONS: tuple[int, ...] = (
    *range(1, 13),
    14,
    16,
    18,
    20,
    22,
    24,
    30,
    36,
    42,
    48,
    60,
    72,
    84,
    96,
    120,
    144,
    168,
    192,
)
#: Tempo bins in quarter notes per minute, geometric from 30 to 300.
TEMPOS: tuple[int, ...] = tuple(int(round(30 * 10 ** (i / 31))) for i in range(32))
SPECIALS = ("PAD", "BOS", "EOS", "Bar", "Fill", "FillStart", "FillEnd", "Drums")
#: Token kinds in id order (``Style`` comes from the tokenizer's style list).
KINDS = ("special", "Style", "TimeSig", "Tempo", "Program", "Track", "Pos", "Pitch", "Vel", "Dur")


def bar_positions(numerator: int, denominator: int) -> int:
    """Length of one n/d bar in positions (12 per quarter)."""
    return numerator * 4 * POSITIONS_PER_QUARTER // denominator


def token_meter(numerator: int, denominator: int) -> tuple[int, int] | None:
    """The meter of :data:`METERS` whose ``TimeSig`` token writes an n/d bar, or ``None``.

    A meter of :data:`METERS` is its own token. Another meter borrows the token of a meter with
    the same bar length in positions, so the bar grid is kept exactly: 4/8 -> 2/4, 8/8 -> 4/4,
    10/8 -> 5/4, 12/16 -> 6/8, 1/2 -> 2/4, 2/1 -> 4/2. A compound meter (numerator a multiple of
    3 above 3) prefers a compound token (6/8, 9/8, 12/8), any other a simple one. The score
    keeps its own time signature; only the model reads the borrowed one. Meters with no such
    twin (11/8: 66 positions; bars longer than 4/2: 9/4, 10/4, 6/2) have no token.
    """
    if (numerator, denominator) in METERS:
        return numerator, denominator
    if numerator < 1 or denominator < 1 or (numerator * 4 * POSITIONS_PER_QUARTER) % denominator:
        return None
    length = bar_positions(numerator, denominator)
    twins = [m for m in METERS if bar_positions(*m) == length]
    twins.sort(key=lambda m: _compound(*m) != _compound(numerator, denominator))  # stable: METERS order
    return twins[0] if twins else None


def _compound(numerator: int, denominator: int) -> bool:
    return numerator % 3 == 0 and numerator > 3


def meter_parts(numerator: int, denominator: int) -> tuple[tuple[int, int], ...] | None:
    """The meters in which one n/d bar is written as tokens, in order; ``None`` when none can.

    A meter with a ``TimeSig`` token or a twin of the same bar length (:func:`token_meter`) is
    one part, itself. Any other bar is written as 2-4 bars of :data:`METERS` that fill it exactly:
    equal parts in its own denominator where they exist (10/4 -> 5/4 + 5/4, 6/2 -> 3/2 + 3/2,
    9/4 -> 3/4 x 3, 15/8 -> 5/8 x 3), else equal parts of another meter (3/1 -> 6/4 + 6/4), else
    the two most even unequal parts (11/8 -> 6/8 + 5/8, 13/8 -> 7/8 + 6/8). Bars shorter than
    any token's (1/8, 3/16), bars no 2-4 token bars fill (5/16, 7/16, 9/16) and bars off the
    12-per-quarter grid have none. The score keeps its own
    time signature and bar numbers; only the model reads the parts.
    """
    if token_meter(numerator, denominator) is not None:
        return ((numerator, denominator),)
    if numerator < 1 or denominator < 1 or (numerator * 4 * POSITIONS_PER_QUARTER) % denominator:
        return None
    length = bar_positions(numerator, denominator)
    for k in (2, 3, 4):
        if numerator % k == 0 and (numerator // k, denominator) in METERS:
            return ((numerator // k, denominator),) * k
    for k in (2, 3, 4):
        if length % k == 0 and (part := _meter_of_length(length // k, denominator)) is not None:
            return (part,) * k
    for longer in range((length + 1) // 2, length):  # the most even split first
        first, second = _meter_of_length(longer, denominator), _meter_of_length(length - longer, denominator)
        if first is not None and second is not None:
            return first, second
    return None


def _meter_of_length(positions: int, denominator: int) -> tuple[int, int] | None:
    """A meter of :data:`METERS` ``positions`` long, in ``denominator`` where one is."""
    found = [m for m in METERS if bar_positions(*m) == positions]
    return next((m for m in found if m[1] == denominator), found[0] if found else None)


def velocity_bin(velocity: int | np.ndarray) -> int | np.ndarray:
    """MIDI velocity 1..127 -> bin 0..15."""
    return np.clip(np.asarray(velocity) // 8, 0, VELOCITY_BINS - 1)


def bin_velocity(index: int) -> int:
    """Bin 0..15 -> the MIDI velocity it decodes to (``8 * index + 4``)."""
    return 8 * int(index) + 4


def duration_bin(positions: np.ndarray) -> np.ndarray:
    """Durations in positions (int array) -> index of the nearest :data:`DURATIONS` bin."""
    table = np.asarray(DURATIONS)
    return np.abs(np.asarray(positions)[..., None] - table).argmin(axis=-1)


def tempo_bin(qpm: float) -> int:
    """Tempo in quarter notes per minute -> index of the nearest :data:`TEMPOS` bin (log scale)."""
    return int(np.abs(np.log(np.asarray(TEMPOS)) - math.log(max(qpm, 1e-3))).argmin())


@dataclass(frozen=True)
class Span:
    """The id range ``[start, start + size)`` of one token kind."""

    start: int
    size: int

    @property
    def stop(self) -> int:
        return self.start + self.size

    def id(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise TokenizerError(f"token index {index} outside 0..{self.size - 1}")
        return self.start + index


class Vocab:
    """Token names and ids of the multitrack format, with the style (composer) tokens.

    Args:
        styles: style names the model is trained with (words without spaces), e.g.
            ``["bach", "jazz"]``; MuseNet's composer tokens (Payne 2019).

    Raises:
        ConditioningError: an empty style name or one with whitespace.
    """

    def __init__(self, styles: Sequence[str] = ()):
        for name in styles:
            if not isinstance(name, str) or not name or any(c.isspace() for c in name):
                raise ConditioningError(f"style names must be non-empty words, got {name!r}")
        self.styles = list(dict.fromkeys(styles))
        values: dict[str, list[str]] = {
            "special": list(SPECIALS),
            "Style": self.styles,
            "TimeSig": [f"{n}/{d}" for n, d in METERS],
            "Tempo": [str(t) for t in TEMPOS],
            "Program": [str(p) for p in range(128)],
            "Track": [str(i) for i in range(MAX_TRACKS)],
            "Pos": [str(i) for i in range(MAX_BAR_POSITIONS)],
            "Pitch": [str(i) for i in range(128)],
            "Vel": [str(i) for i in range(VELOCITY_BINS)],
            "Dur": [str(d) for d in DURATIONS],
        }
        self.names: list[str] = []
        self.spans: dict[str, Span] = {}
        for kind in KINDS:
            self.spans[kind] = Span(len(self.names), len(values[kind]))
            self.names.extend(v if kind == "special" else f"{kind}_{v}" for v in values[kind])
        self._ids = {name: index for index, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    @property
    def size(self) -> int:
        """Number of ids."""
        return len(self.names)

    def __getitem__(self, name: str) -> int:
        """Id of a token name such as ``"Bar"`` or ``"Pitch_60"``; raises :class:`TokenizerError`."""
        try:
            return self._ids[name]
        except KeyError:
            raise TokenizerError(f"unknown token {name!r}") from None

    def name(self, token_id: int) -> str:
        """Name of an id (``"?<id>"`` for an id outside the vocabulary)."""
        return self.names[token_id] if 0 <= token_id < len(self.names) else f"?{token_id}"

    def kind(self, token_id: int) -> str:
        """Kind of an id (``"special"`` for PAD/BOS/EOS/Bar/Fill/FillStart/FillEnd/Drums)."""
        for kind, span in self.spans.items():
            if span.start <= token_id < span.stop:
                return kind
        raise TokenizerError(f"id {token_id} is outside the vocabulary of {len(self)} tokens")

    # ---- named ids --------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        return self._ids["PAD"]

    @property
    def bos_id(self) -> int:
        return self._ids["BOS"]

    @property
    def eos_id(self) -> int:
        return self._ids["EOS"]

    @property
    def bar_id(self) -> int:
        return self._ids["Bar"]

    def style_id(self, style: str) -> int:
        """Id of ``Style_<style>``.

        Raises:
            ConditioningError: a style the model was not trained with (the message lists them).
        """
        if style not in self.styles:
            known = ", ".join(self.styles) or "none"
            raise ConditioningError(f"unknown style {style!r}: this model knows the styles: {known}")
        return self.spans["Style"].start + self.styles.index(style)

    def instrument_id(self, program: int) -> int:
        """Header id of a track's instrument: ``Program_<p>`` (0..127) or ``Drums`` (``-1``).

        Raises:
            ConditioningError: a program outside -1..127.
        """
        if program == DRUMS:
            return self._ids["Drums"]
        if not isinstance(program, int | np.integer) or not 0 <= program < 128:
            raise ConditioningError(f"a GM program must be -1 (drums) or 0..127, got {program!r}")
        return self.spans["Program"].start + int(program)

    def meter_id(self, numerator: int, denominator: int) -> int:
        """Id of the ``TimeSig`` token that writes an n/d bar (:func:`token_meter`: its own, or
        that of a meter with the same bar length); raises :class:`TokenizerError` when none does."""
        meter = token_meter(numerator, denominator)
        if meter is None:
            raise TokenizerError(
                f"time signature {numerator}/{denominator} has no token; {supported_meters()}"
            )
        return self.spans["TimeSig"].start + METERS.index(meter)

    # ---- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "styles": self.styles,
            "positions_per_quarter": POSITIONS_PER_QUARTER,
            "max_tracks": MAX_TRACKS,
            "vocab_size": len(self),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``tokenizer.json`` (format, version, styles) atomically to a folder or ``.json`` path."""
        target = Path(path)
        if target.suffix != ".json":
            target = target / TOKENIZER_FILE
        with atomic_open(target) as handle:
            json.dump(self.to_dict(), handle, indent=1)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        """Read a ``tokenizer.json`` written by :meth:`save` (a file or the folder holding it).

        Raises:
            TokenizerError: missing file, another format or version, or a size mismatch.
        """
        target = Path(path)
        if target.is_dir():
            target = target / TOKENIZER_FILE
        try:
            meta = json.loads(target.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TokenizerError(f"tokenizer file not found: {target}") from None
        except (OSError, ValueError) as exc:
            raise TokenizerError(f"{target} is not readable JSON: {exc}") from None
        if (
            not isinstance(meta, dict)
            or meta.get("format") != FORMAT
            or meta.get("version") != FORMAT_VERSION
        ):
            raise TokenizerError(f"{target} is not a {FORMAT} v{FORMAT_VERSION} tokenizer")
        vocab = cls(meta.get("styles", []))
        if meta.get("vocab_size") != len(vocab):
            raise TokenizerError(f"{target}: vocabulary size {meta.get('vocab_size')} != {len(vocab)}")
        return vocab


def supported_meters() -> str:
    """One line listing the meters with a token, e.g. ``supported: 1/4, 2/4, ...``, and the rule
    for the others (:func:`token_meter`)."""
    return (
        "supported: "
        + ", ".join(f"{n}/{d}" for n, d in METERS)
        + ", any meter of the same bar length as one of them (4/8 as 2/4) and bars a few of them fill"
        + " (10/4 as 5/4 + 5/4; a 1/8 pickup with the next bar)"
    )

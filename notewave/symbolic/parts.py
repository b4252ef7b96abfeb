"""Parts and registers: the parts the composer can add to a piece (``accompany``,
``continue_midi(instruments=...)``): named instruments and voices with their GM programs and
written ranges, and the parser of a user's ``--add`` / ``--instruments`` list; and the register
each given track keeps when continue and infill write more of it (:func:`given_ranges`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

import numpy as np

from notewave.errors import ConditioningError, ConfigError
from notewave.symbolic.piece import BAR, PITCH, TRACK, Piece
from notewave.symbolic.vocab import DRUMS

#: Semitones a continued or infilled track may go beyond the lowest and highest pitch it plays in
#: the given music (:func:`given_ranges`). On the 712 held-out pieces of at least 12 bars (valid
#: and test splits of all four sources), 0.08 % of the real notes of bars 5-8 (infill) and 0.07 %
#: of bars 9-12 (continuation) lie outside their track's range in the other bars widened by 7
#: semitones (4.6 % / 7.6 % outside the bare range, 0.2 % / 0.25 % at 5, none at 12; counted by
#: session 12's runs/s12/rangestat.py, described in the composer's model card).
RANGE_MARGIN = 7


class Part(NamedTuple):
    """A track to add: its ``name``, GM ``program`` (``-1`` drums) and written ``pitches``
    ``(low, high)`` (MIDI numbers, inclusive; ``None``: the format's whole range)."""

    name: str
    program: int
    pitches: tuple[int, int] | None = None


#: Parts ``accompany`` (and ``continue_midi(instruments=...)``) can add: name -> parts (track name,
#: GM program, ``None`` for the melody's; written range). Voice ranges are those of Bach's chorales
#: (soprano C4-A5, alto F3-D5, tenor C3-A4, bass C2-D4); instrument ranges are the usual written
#: ranges (electric bass E1-C4, guitar E2-E6, flute C4-C7, brass E2-C6, choir E2-A5).
PARTS: dict[str, tuple[tuple[str, int | None, tuple[int, int] | None], ...]] = {
    "satb": (("Alto", None, (53, 74)), ("Tenor", None, (48, 69)), ("Bass", None, (36, 62))),
    "bass": (("Bass", 33, (28, 60)),),
    "drums": (("Drums", DRUMS, None),),
    "piano": (("Piano", 0, None),),
    "guitar": (("Guitar", 25, (40, 88)),),
    "strings": (("Strings", 48, None),),
    "organ": (("Organ", 19, None),),
    "choir": (("Choir", 52, (40, 81)),),
    "brass": (("Brass", 61, (40, 84)),),
    "flute": (("Flute", 73, (60, 96)),),
}


#: Usual written ranges (MIDI numbers, inclusive) of General MIDI programs, for a part added as
#: ``NAME=PROGRAM``: by family (organ C2-C7, guitar E2-E6, bass E1-C4, synth lead C3-C7, pad C2-C7),
#: and per program where a family spans instruments of different registers (violin G3-G7, viola
#: C3-G6, cello C2-E5, contrabass E1-G4; choir E2-A5; trumpet F#3-D6, trombone E2-F5, tuba E1-F4,
#: horn A#1-F5; saxophones soprano to baritone, oboe, cor anglais, bassoon, clarinet; piccolo D5-C8,
#: flute C4-C7). Pianos, chromatic percussion, string ensembles and effects keep the whole range.
FAMILY_RANGES = {2: (36, 96), 3: (40, 88), 4: (28, 60), 10: (48, 96), 11: (36, 96)}
PROGRAM_RANGES = {
    **{40: (55, 103), 41: (48, 91), 42: (36, 76), 43: (28, 67), 52: (40, 81), 53: (40, 81), 54: (40, 81)},
    **{56: (54, 86), 57: (40, 77), 58: (28, 65), 59: (54, 86), 60: (34, 77), 61: (40, 84)},
    **{64: (56, 87), 65: (49, 81), 66: (44, 76), 67: (36, 69), 68: (58, 91), 69: (52, 81)},
    **{70: (34, 75), 71: (50, 94), 72: (74, 108), 73: (60, 96), 74: (60, 96), 75: (60, 96)},
}


def program_range(program: int) -> tuple[int, int] | None:
    """The usual written range (MIDI numbers, inclusive) of GM ``program`` (0..127; ``-1`` drums),
    from :data:`PROGRAM_RANGES`, else :data:`FAMILY_RANGES` by family (``program // 8``); ``None``
    where the format's whole range applies."""
    if program < 0:
        return None
    return PROGRAM_RANGES.get(program, FAMILY_RANGES.get(program // 8))


def parse_instruments(spec: Sequence[str] | str, melody_program: int) -> list[Part]:
    """Parts to add from names such as ``"bass,drums"``, ``"satb"`` or ``"Lead=81"`` (a track name
    and a GM program, ``-1`` for drums, written in the program's usual range, :func:`program_range`).

    Raises:
        ConditioningError: an unknown part name or a bad program (the message lists the known parts).
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[Part] = []
    for item in (i.strip() for i in items):
        if "=" in item:
            name, _, program = item.partition("=")
            try:
                value = int(program)
            except ValueError:
                raise ConditioningError(f"{item!r}: the program after '=' must be -1..127") from None
            if not -1 <= value <= 127 or not name.strip():
                raise ConditioningError(f"{item!r}: give NAME=PROGRAM with a program in -1..127")
            out.append(Part(name.strip(), value, program_range(value)))
        elif item.lower() in PARTS:
            out.extend(Part(n, melody_program if p is None else p, r) for n, p, r in PARTS[item.lower()])
        else:
            known = ", ".join(PARTS)
            raise ConditioningError(f"unknown instrument {item!r}; known: {known}, or NAME=PROGRAM")
    if not out:
        raise ConditioningError("give at least one instrument to add")
    return out


def given_ranges(
    piece: Piece,
    skip: Collection[tuple[int, int]] = (),
    until: int | None = None,
    margin: int | None = RANGE_MARGIN,
) -> dict[int, tuple[int, int]]:
    """Pitch bounds ``{track: (low, high)}`` (MIDI numbers, inclusive) that keep the new notes of
    each pitched track of ``piece`` in its register: the lowest and highest pitch the track plays
    in the given music (bars before ``until``, slots ``(bar, track)`` not in ``skip``; 0-based)
    widened by ``margin`` semitones. A track with no given note gets no bound; ``margin=None``
    gives none at all. Without it the model sometimes moves a track out of its register in an
    infill or continuation (a bass line an octave or two up), which also takes its pitches out
    of the key.

    Raises:
        ConfigError: a negative ``margin``.
    """
    if margin is None:
        return {}
    if margin < 0:
        raise ConfigError(f"range margin must be >= 0 semitones (or None: no bound), got {margin}")
    notes = piece.notes
    if until is not None:
        notes = notes[notes[:, BAR] < until]
    if skip and len(notes):
        notes = notes[[(int(b), int(t)) not in skip for b, t in notes[:, [BAR, TRACK]]]]
    out = {}
    for track, program in enumerate(piece.programs):
        pitches = notes[notes[:, TRACK] == track, PITCH]
        if program != DRUMS and len(pitches):
            out[track] = (int(np.min(pitches)) - margin, int(np.max(pitches)) + margin)
    return out

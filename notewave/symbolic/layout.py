"""Multitrack token sequences: bar-major tracks with MMM-style bar-fill infilling.

A sequence is a *header* followed by *bars*::

    BOS [Style_s] TimeSig_n/d Tempo_q  Program_p | Drums  (one per track, in track order)
    Bar [TimeSig_..] [Tempo_..]  Track_0 <events>  Track_1 <events> ... Track_{T-1} <events>
    Bar ...
    [EOS]                                                   (the piece ends)

``<events>`` of a track in a bar are notes in time order: ``Pos_k`` (position in the bar,
12 per quarter) before the first note of each onset, then ``Pitch_p Vel_v Dur_d`` per note
(pitches rising within an onset). Every bar lists every track, so each note belongs to
a track the model itself chooses, tracks that share a program stay apart (SATB on one organ),
and a silent track is a bare ``Track_i``. ``TimeSig``/``Tempo`` appear in a bar only
where they change.

Infilling with a causal model follows MMM's bar-fill layout (Ens & Pasquier 2020,
"MMM: Exploring Conditional Multi-Track Music Generation with the Transformer"): the
events of each (bar, track) slot to be generated are replaced by ``Fill`` and the slots
are appended after the last bar, in order, as ``FillStart Track_i <events> FillEnd``, so the
model writes them having seen the music on both sides. Accompaniment is the same layout
with every slot of the new tracks filled. Continuation needs no fill: the model writes the
next ``Bar``. The style token is MuseNet's composer token (Payne 2019).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from notewave.errors import TokenizerError
from notewave.symbolic.piece import BAR, DUR, PITCH, POS, TRACK, VEL, Piece
from notewave.symbolic.vocab import TEMPOS, Vocab, bar_positions, tempo_bin


def header_ids(
    vocab: Vocab, programs: Sequence[int], meter: tuple[int, int], tempo_qpm: float, style: str | None = None
) -> list[int]:
    """``BOS [Style] TimeSig Tempo <instrument per track>`` (ids).

    Raises:
        ConditioningError: an unknown style or a program outside -1..127.
        TokenizerError: a meter without a token.
    """
    ids = [vocab.bos_id]
    if style is not None:
        ids.append(vocab.style_id(style))
    ids.append(vocab.meter_id(*meter))
    ids.append(vocab.spans["Tempo"].id(tempo_bin(tempo_qpm)))
    ids.extend(vocab.instrument_id(int(p)) for p in programs)
    return ids


def segment_ids(vocab: Vocab, rows: np.ndarray) -> list[int]:
    """Events of one track in one bar (rows of :attr:`Piece.notes`, sorted by position then pitch)."""
    pos0, pitch0 = vocab.spans["Pos"].start, vocab.spans["Pitch"].start
    vel0, dur0 = vocab.spans["Vel"].start, vocab.spans["Dur"].start
    ids: list[int] = []
    last = -1
    for pos, pitch, vel, dur in rows[:, [POS, PITCH, VEL, DUR]].tolist():
        if pos != last:
            ids.append(pos0 + pos)
            last = pos
        ids.extend((pitch0 + pitch, vel0 + vel, dur0 + dur))
    return ids


def bar_ids(
    vocab: Vocab,
    piece: Piece,
    bar: int,
    rows: np.ndarray,
    previous: tuple[tuple[int, int], int] | None,
    fill_tracks: Iterable[int] = (),
) -> list[int]:
    """Tokens of one bar: ``Bar``, a ``TimeSig``/``Tempo`` where they differ from ``previous``
    (the meter and tempo bin of the bar before; ``None`` at the start of a window, where the
    header holds them), then every track's events, ``Fill`` for the tracks in ``fill_tracks``.

    ``rows`` are the bar's notes (:meth:`Piece.bar_notes`).
    """
    ids = [vocab.bar_id]
    meter, tempo = piece.meters[bar], tempo_bin(float(piece.tempos[bar]))
    if previous is not None:
        if vocab.meter_id(*meter) != vocab.meter_id(*previous[0]):  # 4/8 after 2/4: one token
            ids.append(vocab.meter_id(*meter))
        if tempo != previous[1]:
            ids.append(vocab.spans["Tempo"].id(tempo))
    fill = set(fill_tracks)
    track0 = vocab.spans["Track"].start
    bounds = np.searchsorted(rows[:, TRACK], np.arange(piece.tracks + 1))
    for track in range(piece.tracks):
        ids.append(track0 + track)
        if track in fill:
            ids.append(vocab["Fill"])
        else:
            ids.extend(segment_ids(vocab, rows[bounds[track] : bounds[track + 1]]))
    return ids


def track_rows(rows: np.ndarray, track: int) -> np.ndarray:
    """The rows of one track among a bar's rows."""
    return rows[rows[:, TRACK] == track]


def fill_ids(vocab: Vocab, track: int, rows: np.ndarray) -> list[int]:
    """``FillStart Track_i <events> FillEnd`` for one filled slot."""
    return [vocab["FillStart"], vocab.spans["Track"].id(track), *segment_ids(vocab, rows), vocab["FillEnd"]]


def piece_ids(
    vocab: Vocab,
    piece: Piece,
    start: int = 0,
    stop: int | None = None,
    style: str | None = None,
    fills: Iterable[tuple[int, int]] = (),
    eos: bool | None = None,
    append_fills: bool = True,
) -> list[int]:
    """Header and bars ``start..stop-1`` of ``piece``; slots ``(bar, track)`` in ``fills`` are
    replaced by ``Fill`` and (``append_fills``) appended in bar-fill order. ``eos`` (default: when
    ``stop`` is the piece's end and there are no fills) appends ``EOS``."""
    stop = piece.bars if stop is None else stop
    slots = sorted(set(fills))
    by_bar: dict[int, list[int]] = {}
    for bar, track in slots:
        by_bar.setdefault(bar, []).append(track)
    ids = header_ids(vocab, piece.programs, piece.meters[start], float(piece.tempos[start]), style)
    offsets = piece.bar_offsets()
    previous = None
    for bar in range(start, stop):
        rows = piece.notes[offsets[bar] : offsets[bar + 1]]
        ids.extend(bar_ids(vocab, piece, bar, rows, previous, by_bar.get(bar, ())))
        previous = (piece.meters[bar], tempo_bin(float(piece.tempos[bar])))
    for bar, track in slots if append_fills else []:
        ids.extend(fill_ids(vocab, track, track_rows(piece.notes[offsets[bar] : offsets[bar + 1]], track)))
    if eos if eos is not None else (stop == piece.bars and not slots):
        ids.append(vocab.eos_id)
    return ids


@dataclass
class Parsed:
    """Notes read back from a token sequence.

    Attributes:
        notes: int32 ``[N, 6]`` rows as :attr:`Piece.notes`, bars counted from the first
            ``Bar`` of the sequence; filled slots hold their fill's notes.
        meters: meter of each bar read; tempos: tempo (qpm) of each bar read.
        programs: the header's instruments (empty when the sequence has no header).
        fills: the ``(bar, track)`` slots marked ``Fill``, in order.
        filled: how many of them have their ``FillStart ... FillEnd`` in the sequence.
    """

    notes: np.ndarray
    meters: list[tuple[int, int]]
    tempos: list[float]
    programs: list[int]
    fills: list[tuple[int, int]]
    filled: int


def parse_ids(
    vocab: Vocab, ids: Sequence[int], meter: tuple[int, int] = (4, 4), tempo: float = 120.0
) -> Parsed:
    """Read notes back from ids (a header is optional; ``meter``/``tempo`` apply until one is read).

    A note cut off before its ``Dur`` is dropped; special and style tokens are skipped.

    Raises:
        TokenizerError: an id outside the vocabulary, or a note in a position its bar lacks.
    """
    spans = vocab.spans
    rows: list[tuple[int, int, int, int, int, int]] = []
    meters: list[tuple[int, int]] = []
    tempos: list[float] = []
    programs: list[int] = []
    fills: list[tuple[int, int]] = []
    bar, track, pos, pitch, vel, fill_index = -1, -1, -1, -1, -1, -1
    in_header = True
    for token in ids:
        token = int(token)
        kind = vocab.kind(token)
        if kind == "TimeSig":
            meter = tuple(int(v) for v in vocab.name(token)[8:].split("/"))  # type: ignore[assignment]
            if bar >= 0 and not in_header:
                meters[-1] = meter
        elif kind == "Tempo":
            tempo = float(TEMPOS[token - spans["Tempo"].start])
            if bar >= 0:
                tempos[-1] = tempo
        elif kind == "Program" and in_header:
            programs.append(token - spans["Program"].start)
        elif token == vocab["Drums"] and in_header:
            programs.append(-1)
        elif token == vocab.bar_id:
            in_header = False
            bar += 1
            meters.append(meter)
            tempos.append(tempo)
            track, pos = -1, -1
        elif kind == "Track":
            track, pos = token - spans["Track"].start, -1  # in a fill, the slot decides where notes go
        elif token == vocab["Fill"]:
            fills.append((bar, track))
        elif token == vocab["FillStart"]:
            fill_index += 1
            pos = -1
        elif token == vocab["FillEnd"]:
            pos = -1
        elif kind == "Pos":
            pos = token - spans["Pos"].start
        elif kind == "Pitch":
            pitch, vel = token - spans["Pitch"].start, -1
        elif kind == "Vel":
            vel = token - spans["Vel"].start
        elif kind == "Dur" and pitch >= 0 and vel >= 0 and pos >= 0:
            where = (bar, track)
            if 0 <= fill_index < len(fills):
                where = fills[fill_index]
            if where[0] < 0 or where[1] < 0:
                raise TokenizerError("a note before the first Bar/Track token")
            length = bar_positions(*meters[where[0]])
            if pos >= length:
                raise TokenizerError(f"position {pos} outside a {length}-position bar ({meters[where[0]]})")
            rows.append((where[1], where[0], pos, pitch, vel, token - spans["Dur"].start))
            pitch, vel = -1, -1
    notes = np.asarray(rows, dtype=np.int32).reshape(-1, 6)
    if len(notes):
        notes = notes[np.lexsort((notes[:, PITCH], notes[:, POS], notes[:, TRACK], notes[:, BAR]))]
    filled = min(fill_index + 1, len(fills))
    return Parsed(notes, meters, tempos, programs, fills, filled)


def note_count(vocab: Vocab, ids: Iterable[int]) -> int:
    """Number of complete notes (``Dur`` tokens) in ids."""
    dur = vocab.spans["Dur"]
    return sum(1 for i in ids if dur.start <= int(i) < dur.stop)


def ids_to_text(vocab: Vocab, ids: Iterable[int], width: int = 100) -> str:
    """The ids as token names laid out like ``docs/tokens.md``: the header on one line, then a line
    per ``Bar`` and per ``FillStart``, each track's events on their own indented line(s).

    Args:
        vocab: the vocabulary of ``ids``.
        ids: token ids (any sequence the model reads or writes).
        width: wrap a track's events at about this many characters (continuation lines indented).

    Returns:
        Multi-line text; ``ids_to_text(v, ids).split()`` gives back ``[v.name(i) for i in ids]``.
    """
    lines: list[list[str]] = [[]]
    for token in ids:
        name = vocab.name(int(token))
        if name in ("Bar", "FillStart", "EOS") or (
            name.startswith("Track_") and lines[-1][:1] != ["FillStart"]
        ):
            lines.append([])
        lines[-1].append(name)
    out: list[str] = []
    for words in (w for w in lines if w):
        indent = "    " if words[0].startswith("Track_") else ""
        line = indent
        for word in words:
            if len(line) + len(word) > width and line.strip():
                out.append(line.rstrip())
                line = indent + "        "
            line += word + " "
        out.append(line.rstrip())
    return "\n".join(out)

"""The composer's edits on MIDI: continue, infill and accompany a user's own file.

Each function reads the MIDI (path, bytes or ``symusic.Score``), quantizes it onto its
own bar grid (:mod:`notewave.symbolic.piece`), lets the model write the new bars or slots
(:mod:`notewave.symbolic.generate`) and puts only the new notes into a copy of the
user's score: every track keeps its name, program, drum flag and order, the tempo map,
time signatures and ticks per quarter stay as they were, and no note outside the edit
moves. Bars are counted on the score's bar grid (from tick 0, in its meters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from symusic import Score, Track

from notewave.core.midi import BarGrid, MidiLike, bar_grid, end_at, load_score, midi_name
from notewave.core.sampling import check_sampling_args
from notewave.errors import ConfigError, MidiError, TokenizerError
from notewave.symbolic.decode import Sampling
from notewave.symbolic.defaults import CONSONANCE, DENSITY, KEY, KEY_BALANCE, LENGTHS
from notewave.symbolic.density_guide import CONTINUE_SHARE, DensityGuide
from notewave.symbolic.generate import continue_piece, fill_slots
from notewave.symbolic.guide import ConsonanceGuide
from notewave.symbolic.key_guide import KeyGuide
from notewave.symbolic.length_guide import LengthGuide
from notewave.symbolic.model import MidiLM
from notewave.symbolic.parts import RANGE_MARGIN, Part, given_ranges, parse_instruments
from notewave.symbolic.piece import BAR, POS, TRACK, Piece, piece_from_score, place_notes, token_grid
from notewave.symbolic.vocab import DRUMS, MAX_TRACKS, POSITIONS_PER_QUARTER, Vocab, meter_parts


def sampling_for(seed: int | None, temperature: float, top_k: int | None, top_p: float | None) -> Sampling:
    """:class:`Sampling` with a generator seeded by ``seed`` (``None``: nondeterministic).

    Raises:
        ConfigError: invalid temperature, top-k or top-p.
    """
    check_sampling_args(temperature, top_k, top_p)
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    return Sampling(temperature, top_k, top_p, generator)


def first_bars(score: Score, bars: int) -> Score:
    """Copy of ``score`` cut at the end of bar ``bars`` (notes clipped there).

    Raises:
        ConfigError: ``bars < 1``.
        MidiError: no note starts in those bars.
    """
    if bars < 1:
        raise ConfigError(f"prompt_bars must be >= 1, got {bars}")
    grid = bar_grid(score)
    grid = grid.extended(max(0, bars - grid.bars))
    return load_score(score.copy().clip(0, int(grid.lines[bars]), clip_end=True))


def read_piece(
    vocab: Vocab, midi: MidiLike, style: str | None, prompt_bars: int | None = None
) -> tuple[Score, Piece]:
    """Load and quantize a user's MIDI (only its first ``prompt_bars`` bars when given), checking it
    can be edited.

    Raises:
        MidiError: unreadable, empty or drum-only MIDI.
        TokenizerError: a meter no token bars can write or more than 16 tracks.
        ConditioningError: an unknown style.
    """
    if style is not None:
        vocab.style_id(style)
    name = midi_name(midi)
    score = load_score(midi, allow_drums_only=False)
    if prompt_bars is not None:
        score = first_bars(score, prompt_bars)
    piece = piece_from_score(score, name)
    if not len(piece.notes):
        raise MidiError(f"{name} has no notes in the piano range (MIDI pitches 21..108)")
    return score, piece


def _sounding_tracks(score: Score) -> list[Track]:
    return [t for t in score.tracks if len(t.notes)]


def _add_notes(out: Score, tracks: list[Track], rows: np.ndarray, grid: Any) -> None:
    for index, notes in place_notes(rows, grid).items():
        tracks[index].notes.extend(notes)
    for track in out.tracks:
        track.notes.sort(key=lambda n: (n.time, n.pitch))


def _with_new_tracks(
    out: Score, piece: Piece, parts: list[Part], name: str
) -> tuple[list[Track], dict[int, tuple[int, int]]]:
    """Append empty tracks for ``parts`` to ``out`` and ``piece``; return the tracks of ``out``
    in piece-track order and the pitch ranges of the new ones (piece track -> (low, high))."""
    if piece.tracks + len(parts) > MAX_TRACKS:
        raise TokenizerError(
            f"{name} has {piece.tracks} tracks; adding {len(parts)} would exceed the {MAX_TRACKS} "
            "the format holds"
        )
    tracks = _sounding_tracks(out)
    ranges = {}
    for part in parts:
        track = Track(name=part.name, program=max(part.program, 0), is_drum=part.program == DRUMS)
        out.tracks.append(track)
        tracks.append(out.tracks[-1])
        if part.pitches is not None:
            ranges[piece.tracks] = part.pitches
        piece.programs.append(part.program)
        piece.names.append(part.name)
    return tracks, ranges


def continue_midi(
    model: MidiLM,
    vocab: Vocab,
    prompt: MidiLike,
    bars: int = 8,
    style: str | None = None,
    instruments: Sequence[str] | str | None = None,
    prompt_bars: int | None = None,
    seed: int | None = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = 0.95,
    progress: bool = False,
    keep_playing: bool = True,
    key: float = KEY,
    density: float = DENSITY,
    range_margin: int | None = RANGE_MARGIN,
    lengths: float = LENGTHS,
    key_balance: float = KEY_BALANCE,
) -> Score:
    """Continue ``prompt`` by ``bars`` bars; returns prompt + continuation as one ``Score``.

    The continuation starts on the first bar line at or after the prompt's last note-off, in the
    meter and tempo in force there; every prompt track may play in it (``instruments`` adds tracks
    that join in, see :func:`~notewave.symbolic.parts.parse_instruments`), and with ``keep_playing``
    every track that plays in the prompt's last bar plays in every new bar, drums included (the
    grammar refuses to close its bar before a note). ``key``: weight of the key guide, which keeps
    new pitches near the pitch-class profile of the prompt's last bars
    (:class:`~notewave.symbolic.key_guide.KeyGuide`; 0: the model alone); ``key_balance``: weight
    of its balance term, which steers the pitch-class mix of the new notes toward that profile (0:
    off; off with ``key=0`` too). ``density``: strength of
    the density guide, which keeps a playing track from closing a new bar with fewer than half the
    notes it plays in the prompt's last bars
    (:class:`~notewave.symbolic.density_guide.DensityGuide`; 0: off). ``lengths``: weight of the
    length guide, which keeps each track's new note lengths near those it plays in the prompt's
    last bars (:class:`~notewave.symbolic.length_guide.LengthGuide`; 0: off). ``range_margin``: a prompt
    track's new notes stay within this many semitones of the lowest and highest pitch it plays in
    the prompt (a grammar constraint, :func:`~notewave.symbolic.parts.given_ranges`; ``None``: the
    format's whole range). Same ``seed``, same output.

    Raises:
        MidiError: unreadable, empty, drum-only prompt.
        TokenizerError: a meter no token bars can write (e.g. 7/16), more than 16 tracks.
        ConditioningError: an unknown style or instrument.
        ConfigError: ``bars < 1``, ``prompt_bars < 1``, bad sampling settings, a negative ``key``,
            ``key_balance``, ``density``, ``lengths`` or ``range_margin``.
    """
    if bars < 1:
        raise ConfigError(f"bars must be >= 1, got {bars}")
    sampling = sampling_for(seed, temperature, top_k, top_p)
    score, piece = read_piece(vocab, prompt, style, prompt_bars)
    # the prompt's bars, not the new ones, set the key and density the guides hold to
    guides = [
        KeyGuide(vocab, key, until=piece.bars, balance=key_balance),
        DensityGuide(vocab, density, until=piece.bars, share=CONTINUE_SHARE),
        LengthGuide(vocab, lengths, until=piece.bars),
    ]
    out = score.copy()
    tracks, ranges = _sounding_tracks(out), given_ranges(piece, margin=range_margin)
    if instruments:
        program = next((p for p in piece.programs if p != DRUMS), 0)
        parts = parse_instruments(instruments, program)
        tracks, added = _with_new_tracks(out, piece, parts, midi_name(prompt))
        ranges.update(added)
    model.eval()
    bar_lines = bar_grid(score)
    if meter_parts(*(last_meter := bar_lines.meters[-1])) is None:
        raise TokenizerError(
            f"{midi_name(prompt)} ends on a {last_meter[0]}/{last_meter[1]} bar, which no token bars write; "
            "continue from the bar before (--prompt-bars)"
        )
    grid = token_grid(bar_lines.extended(bars))[0]  # a 10/4 bar is written as two of 5/4
    new_meters = grid.meters[piece.bars :]
    result = continue_piece(
        model,
        vocab,
        piece,
        len(new_meters),
        sampling,
        style,
        progress,
        keep_playing,
        ranges,
        guides,
        new_meters,
    )
    _add_notes(out, tracks, result.notes[result.notes[:, BAR] >= piece.bars], grid)
    return end_at(out, int(grid.lines[-1]))  # new bars that rest still count


def span_slots(piece: Piece, first: int, last: int, tracks: Sequence[int]) -> list[tuple[int, int]]:
    """Slots of bars ``first..last`` (1-based, inclusive) and ``tracks`` (piece track indices)."""
    return [(bar, t) for bar in range(first - 1, last) for t in tracks]


def track_indices(piece: Piece, names: Sequence[str] | str | None, name: str) -> list[int]:
    """Piece track indices of track ``names`` (all tracks for ``None``), matched case-insensitively.

    Raises:
        ConfigError: a name no track has (the message lists the tracks).
    """
    if names is None:
        return list(range(piece.tracks))
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    lower = [n.lower() for n in piece.names]
    out = []
    for item in wanted:
        if item.lower() not in lower:
            raise ConfigError(f"{name} has no track {item!r}; its tracks: {', '.join(piece.names)}")
        out.extend(i for i, n in enumerate(lower) if n == item.lower())
    if not out:
        raise ConfigError("give at least one track name")
    return sorted(set(out))


def _playing_around(piece: Piece, first: int, last: int) -> set[int]:
    """Tracks with an onset in the bar before bars ``first..last`` (1-based) and in the bar after
    them (where the span starts or ends the piece, the one side there is)."""
    sides = [b for b, inside in ((first - 2, first > 1), (last, last < piece.bars)) if inside]
    found = [set(piece.bar_notes(b)[:, TRACK].tolist()) for b in sides]
    return set.intersection(*found) if found else set()


def infill_midi(
    model: MidiLM,
    vocab: Vocab,
    midi: MidiLike,
    bars: tuple[int, int],
    tracks: Sequence[str] | str | None = None,
    style: str | None = None,
    seed: int | None = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = 0.95,
    progress: bool = False,
    key: float = KEY,
    keep_playing: bool = True,
    density: float = DENSITY,
    range_margin: int | None = RANGE_MARGIN,
    lengths: float = LENGTHS,
    key_balance: float = KEY_BALANCE,
) -> Score:
    """Regenerate bars ``bars[0]..bars[1]`` (1-based, inclusive) of ``midi`` in ``tracks`` (track
    names; default all), from the music on both sides (MMM bar-fill). Notes starting outside
    the span, or in other tracks, are unchanged note for note. ``key``, ``key_balance``: weights of
    the key guide and its balance term (the profile of the bars on both sides; see
    :func:`continue_midi`); ``density``: strength of
    the density guide and ``lengths`` the weight of the length guide (the bars on both sides; see
    :func:`continue_midi`). With ``keep_playing`` a
    regenerated track that plays in the bar before the span and in the bar after it (or, for a
    span that ends the piece, in the bar before) plays in every bar of the span, drums included
    (a grammar constraint). ``range_margin``: as :func:`continue_midi`, from the track's notes
    outside the span.

    Raises:
        ConfigError: a span of zero bars, reversed, or outside the piece; an unknown track name;
            a negative ``key``, ``key_balance``, ``density``, ``lengths`` or ``range_margin``.
        MidiError, TokenizerError, ConditioningError: as :func:`continue_midi`.
    """
    sampling = sampling_for(seed, temperature, top_k, top_p)
    score, piece = read_piece(vocab, midi, style)
    bar_lines = bar_grid(score)
    grid, starts = token_grid(bar_lines)
    first, last = (int(b) for b in bars)
    if first < 1 or last < first or last > bar_lines.bars:
        raise ConfigError(
            f"infill span {first}-{last} is not inside {midi_name(midi)}, which has bars 1-{bar_lines.bars}"
        )
    start, stop = int(bar_lines.lines[first - 1]), int(bar_lines.lines[last])  # the span in ticks
    # ... and in the bars the model writes (a 10/4 bar is two; a 1/8 pickup shares its token bar)
    first, last = int(starts[first - 1]) + 1, int(starts[last]) + int(grid.lines[starts[last]] != stop)
    chosen = track_indices(piece, tracks, midi_name(midi))
    model.eval()
    slots = span_slots(piece, first, last, chosen)
    guides = [
        KeyGuide(vocab, key, skip=slots, balance=key_balance),
        DensityGuide(vocab, density, skip=slots),
        LengthGuide(vocab, lengths, skip=slots),
    ]
    playing = _playing_around(piece, first, last) if keep_playing else set()
    must_play = {(bar, t) for bar, t in slots if t in playing}
    ranges = given_ranges(piece, skip=slots, margin=range_margin)
    result = fill_slots(model, vocab, piece, slots, sampling, style, progress, ranges, guides, must_play)
    # Half a position before each bar line: notes that quantize onto a bar line belong to its bar.
    half = score.ticks_per_quarter / (2 * POSITIONS_PER_QUARTER)
    out = score.copy()
    sounding = _sounding_tracks(out)
    for index in chosen:
        sounding[index].notes.filter(lambda n: not start - half <= n.time < stop - half, inplace=True)
    rows = result.notes
    onsets = grid.lines[rows[:, BAR]] + rows[:, POS] * score.ticks_per_quarter / POSITIONS_PER_QUARTER
    in_span = (onsets >= start) & (onsets < stop)  # a token bar shared with a pickup: its span part
    in_tracks = np.isin(rows[:, TRACK], chosen)
    span_grid = BarGrid(np.append(grid.lines[:last], stop), grid.meters[:last], grid.ticks_per_quarter)
    _add_notes(out, sounding, rows[in_span & in_tracks], span_grid)  # cut at the span's end
    return end_at(out, int(grid.lines[-1]))  # a final span infilled as rests still counts


def accompany_midi(
    model: MidiLM,
    vocab: Vocab,
    midi: MidiLike,
    add: Sequence[str] | str,
    style: str | None = None,
    seed: int | None = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = 0.95,
    progress: bool = False,
    consonance: float = CONSONANCE,
    key: float = KEY,
) -> Score:
    """Keep every track of ``midi`` and write new ones over its whole length: ``add`` names parts
    (``"satb"``: Alto, Tenor and Bass under a melody in its program; ``"bass,drums"``; ``"piano"``;
    ``"Lead=81"``; see :data:`~notewave.symbolic.parts.PARTS`), written with MMM bar-fill. Every new
    part plays (at least one onset) in every bar where a given track starts a note. A named part's
    notes stay inside its written range (the same table; a grammar constraint), so that a bass voice
    sounds below a tenor from its first note. ``consonance``: nats taken from the logit of a pitch
    dissonant with the melody (the given pitched tracks' highest note) where it is written
    (:class:`~notewave.symbolic.guide.ConsonanceGuide`; 0: the model alone); ``key``: as
    :func:`continue_midi`, from the music around each bar.

    Raises:
        ConditioningError: an unknown part or style.
        ConfigError: a negative ``consonance`` or ``key``.
        TokenizerError: more than 16 tracks with the new ones.
        MidiError: as :func:`continue_midi`.
    """
    sampling = sampling_for(seed, temperature, top_k, top_p)
    score, piece = read_piece(vocab, midi, style)
    out = score.copy()
    program = next((p for p in piece.programs if p != DRUMS), 0)
    parts = parse_instruments(add, program)
    before = piece.tracks
    tracks, ranges = _with_new_tracks(out, piece, parts, midi_name(midi))
    slots = [(bar, t) for bar in range(piece.bars) for t in range(before, piece.tracks)]
    model.eval()
    melody = [t for t in range(before) if piece.programs[t] != DRUMS]
    guides = [ConsonanceGuide(vocab, piece, melody, consonance), KeyGuide(vocab, key)]
    given = set(piece.notes[piece.notes[:, TRACK] < before, BAR].tolist())  # bars the given parts play
    must_play = {(bar, t) for bar, t in slots if bar in given}
    result = fill_slots(model, vocab, piece, slots, sampling, style, progress, ranges, guides, must_play)
    grid = token_grid(bar_grid(score))[0]
    _add_notes(out, tracks, result.notes[result.notes[:, TRACK] >= before], grid)
    return end_at(out, int(grid.lines[-1]))

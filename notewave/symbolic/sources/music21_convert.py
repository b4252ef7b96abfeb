"""Convert one piece of music21's corpus to MIDI bytes, in a worker process, with a file cache.

:func:`convert_piece` parses a :class:`~notewave.symbolic.sources.music21_collections.Music21Piece`
with music21 (``forceSource=True``: music21 writes no pickle), expands its repeats
(music21's ``expandRepeats``; a score whose repeats music21 cannot expand is written as
notated), and writes the MIDI itself with symusic, because music21's own MIDI writer
takes about a minute per quartet movement: :data:`TICKS_PER_QUARTER` ticks per quarter,
one track per part with notes, named after the part, with the General MIDI program of
:func:`part_program`; ties merged, grace notes dropped; velocities from dynamic marks;
tempo marks (else the collection's tempo or 120 BPM), time and key signatures. Chord
symbols are not notes of a part; in lead-sheet collections they become a ``Chords``
track (:func:`chord_notes`). It never raises: failures come back as ``{"ok": False,
"error": ...}`` (:mod:`~notewave.symbolic.sources.music21_cache` keeps them).

A pickup (an anacrusis: a first measure shorter than the second measure's bar) is padded
with rests at the start so that every later bar line of the MIDI falls where the score has
it, and the first bar carries the second measure's time signature (ABC files give a pickup
its own meter, such as 1/8, which would otherwise be a bar of its own); see
:mod:`~notewave.symbolic.sources.music21_pickup`.
"""

from __future__ import annotations

import copy
import math
import re
import signal
import threading
import warnings
from pathlib import Path
from typing import Any

from notewave.symbolic.sources.music21_collections import MUSIC21_COLLECTIONS, Music21Collection, Music21Piece
from notewave.symbolic.sources.music21_pickup import pickup_padding, shift_after_pickup

#: Bump when the conversion changes its output: it invalidates every cache entry.
MUSIC21_SOURCE_VERSION = 2  # 2: pickups padded to a full bar
CONVERT_TIMEOUT_S = 900  # one piece; the largest (Beethoven quartet movements) take about a minute
TICKS_PER_QUARTER = 480
DEFAULT_TEMPO_BPM = 120.0  # MIDI's default, used where a score has no tempo mark
DEFAULT_VELOCITY = 80  # before the first dynamic mark
CHORD_TRACK_NAME = "Chords"
CHORD_VELOCITY = 64
CHORD_LOWEST = 48  # lowest note of a realised chord lies in MIDI 48..59
VOCAL = -1
# The Music21Collection fields that change a conversion (the others only label or list pieces).
CONVERSION_FIELDS = ("program", "voice_program", "trust_instruments", "chords", "voices", "tempo_bpm")
# Part-name patterns -> GM program (VOCAL for singers). Compound names are tried first; then the
# pattern matching earliest in the name wins ("Soprano Oboe 1,2 Violin1" is a singer).
_COMPOUND_PROGRAMS = (
    (r"basso continuo|continuo", 19),
    (r"bass clarinet", 71),
    (r"contrabass|kontrabass|double bass", 43),
)
_WORD_PROGRAMS = (
    (r"harpsichord|cembalo", 6),
    (r"piano|klavier|clavier", 0),
    (r"violone|violoncell|cello", 42),
    (r"organ|orgel", 19),
    (r"guitar|gitarre|chitarra", 24),
    (r"\bharp|arpa\b", 46),
    (r"violin|fiddle", 40),
    (r"viola\b|viole\b|bratsche", 41),
    (r"timpani|pauken", 47),
    (r"trumpet|tromba|trompete|clarino", 56),
    (r"trombone|posaune", 57),
    (r"horn|corno", 60),
    (r"oboe|hautbois", 68),
    (r"bassoon|fagott", 70),
    (r"clarinet|klarinette", 71),
    (r"piccolo|fife", 72),
    (r"recorder|flauto dolce|blockfl", 74),
    (r"flute|flauto|traverso", 73),
    (
        r"sopran|alto|altus|tenor|\bbass|cantus|canto|superius|contra|quint|sext|voice|vox|choir|chor|"
        r"gesang|triplum|motetus|duplum|medius|discantus|vocal",
        VOCAL,
    ),
)
_GENERIC_NAME = re.compile(r"^(|musicxml part|p\d+|part\s*\d*|instrument\s*\d*|none)$", re.IGNORECASE)


def name_program(name: str) -> int | None:
    """GM program guessed from a part name (``"Violino I."`` -> 40), :data:`VOCAL` for a singer, or None.

    Compound names (``"Basso continuo"`` -> 19) are tried first; otherwise the instrument
    or voice word that comes first in the name decides (``"Tenor Viola"`` is a singer).
    """
    lowered = name.lower()
    for pattern, program in _COMPOUND_PROGRAMS:
        if re.search(pattern, lowered):
            return program
    found = [
        (match.start(), program)
        for pattern, program in _WORD_PROGRAMS
        if (match := re.search(pattern, lowered))
    ]
    return min(found)[1] if found else None


def part_program(name: str, embedded: Any, info: Music21Collection) -> int:
    """The GM program (0-127) of a part named ``name`` whose music21 instrument is ``embedded``.

    An instrument name (``"Violino I."``, ``"Cello"``) decides first. Otherwise, with
    ``info.trust_instruments``, a music21 instrument more specific than the base
    ``Instrument`` that has a MIDI program gives it (for a part named as a singer, only a
    vocal instrument does). A singer otherwise gets ``info.voice_program``, anything
    else ``info.program``.
    """
    from music21 import instrument

    guess = name_program(name)
    if guess is not None and guess != VOCAL:
        return guess
    specific = embedded is not None and type(embedded) is not instrument.Instrument
    if info.trust_instruments and specific and embedded.midiProgram is not None:
        if guess is None or isinstance(embedded, instrument.Vocalist):
            return int(embedded.midiProgram)
    return info.voice_program if guess == VOCAL else info.program


def chord_notes(symbols: list[tuple[float, Any]], end: float, tpq: int) -> list[tuple[int, int, int]]:
    """``(tick, duration in ticks, pitch)`` of block chords realising music21 chord symbols.

    ``symbols`` are ``(offset in quarter notes, ChordSymbol)``; a chord lasts until the
    next symbol (the last one until ``end``); its pitches are the symbol's
    (``ChordSymbol.pitches``), moved by whole octaves so that the lowest lies in MIDI
    48-59. No-chord symbols (``N.C.``) and symbols without pitches give silence.
    """
    from music21 import harmony

    notes = []
    symbols = sorted(symbols, key=lambda item: item[0])
    for index, (offset, symbol) in enumerate(symbols):
        stop = symbols[index + 1][0] if index + 1 < len(symbols) else end
        if isinstance(symbol, harmony.NoChord) or not symbol.pitches or stop <= offset:
            continue
        pitches = [pitch.midi for pitch in symbol.pitches]
        shift = 12 * math.ceil((CHORD_LOWEST - min(pitches)) / 12)
        start, stop_tick = round(offset * tpq), round(stop * tpq)
        notes += [(start, stop_tick - start, pitch) for pitch in sorted({p + shift for p in pitches})]
    return notes


def _merge_voices(opus: Any) -> Any:
    """One Score holding the parts of every tune of an ABC opus (one tune per voice)."""
    from music21 import stream

    score = stream.Score()
    scores = list(opus.scores) if isinstance(opus, stream.Opus) else [opus]
    for tune in scores:
        for part in tune.parts:
            label = tune.metadata.alternativeTitle if tune.metadata else None
            if label:
                part.partName = re.sub(r"\s*\(.*\)\s*$", "", str(label)).strip()
            score.insert(0, part)
    if scores and scores[0].metadata is not None:
        score.metadata = scores[0].metadata
    return score


def _velocity_of(scalar: float | None) -> int:
    return DEFAULT_VELOCITY if scalar is None else max(1, min(127, round(scalar * 127)))


def _part_notes(part: Any, tpq: int) -> list[tuple[int, int, int, int]]:
    """``(tick, duration, pitch, velocity)`` of a part: ties merged, grace notes dropped.

    Velocity follows the latest dynamic mark (music21's volume scalar x 127; a note's own
    velocity wins; :data:`DEFAULT_VELOCITY` before any mark).
    """
    from music21 import dynamics

    flat = part.flatten()
    marks = sorted((float(d.offset), d.volumeScalar) for d in flat.getElementsByClass(dynamics.Dynamic))
    notes: list[list[float]] = []  # [start, end, pitch, velocity] in quarter notes
    tied: dict[int, int] = {}  # pitch -> index of the note a tie continues
    mark = 0
    scalar: float | None = None
    for element in flat.notes:
        start, length = float(element.offset), float(element.quarterLength)
        if element.duration.isGrace or length <= 0:
            continue
        while mark < len(marks) and marks[mark][0] <= start:
            scalar = marks[mark][1]
            mark += 1
        own = element.volume.velocity if element.hasVolumeInformation() else None
        velocity = own if own is not None else _velocity_of(scalar)
        for component in list(element.notes) if element.isChord else [element]:
            if getattr(component, "pitch", None) is None:
                continue  # unpitched percussion: none in the exported collections
            pitch = max(0, min(127, round(component.pitch.ps)))
            tie = (component.tie or element.tie) if element.isChord else element.tie
            kind = tie.type if tie is not None else None
            index = tied.get(pitch)
            if kind in ("stop", "continue") and index is not None and abs(notes[index][1] - start) < 1e-6:
                notes[index][1] = start + length
            else:
                index = len(notes)
                notes.append([start, start + length, pitch, velocity])
            if kind in ("start", "continue"):
                tied[pitch] = index
            else:
                tied.pop(pitch, None)
    out = []
    for start, end, pitch, velocity in notes:
        tick, stop = round(start * tpq), round(end * tpq)
        if stop > tick:
            out.append((tick, stop - tick, int(pitch), int(velocity)))
    return out


def _conductor(parts: list[Any], result: Any, tpq: int, default_bpm: float) -> None:
    """Add the tempo, time and key signatures of all parts to ``result`` (first per tick wins)."""
    import symusic
    from music21 import key, meter, tempo

    tempos: dict[int, float] = {}
    meters: dict[int, tuple[int, int]] = {}
    keys: dict[int, tuple[int, int]] = {}
    for part in parts:
        flat = part.flatten()
        for mark in flat.getElementsByClass(tempo.MetronomeMark):
            bpm = mark.getQuarterBPM()
            if bpm:
                tempos.setdefault(round(float(mark.offset) * tpq), float(bpm))
        for sig in flat.getElementsByClass(meter.TimeSignature):
            meters.setdefault(round(float(sig.offset) * tpq), (int(sig.numerator), int(sig.denominator)))
        for sig in flat.getElementsByClass(key.KeySignature):
            minor = int(getattr(sig, "mode", "major") == "minor")
            keys.setdefault(round(float(sig.offset) * tpq), (max(-7, min(7, int(sig.sharps))), minor))
    tempos.setdefault(0, default_bpm)
    for tick, bpm in sorted(tempos.items()):
        result.tempos.append(symusic.Tempo(tick, qpm=bpm))
    for tick, (numerator, denominator) in sorted(meters.items()):
        result.time_signatures.append(symusic.TimeSignature(tick, numerator, denominator))
    for tick, (sharps, minor) in sorted(keys.items()):
        result.key_signatures.append(symusic.KeySignature(tick, sharps, minor))


def _unshare(score: Any) -> None:
    """Give each placement of a time signature, key signature or tempo mark its own object.

    music21's ABC reader can put one TimeSignature object in two measures (around a
    partial bar); flattening the part then fails ("already found in this Stream").
    """
    from music21 import key, meter, stream, tempo

    seen: set[int] = set()
    for container in score.recurse(streamsOnly=True, includeSelf=True):
        if not isinstance(container, stream.Stream):
            continue
        for element in list(
            container.getElementsByClass((meter.TimeSignature, key.KeySignature, tempo.TempoIndication))
        ):
            if id(element) in seen:
                container.replace(element, copy.deepcopy(element))
            else:
                seen.add(id(element))


def _convert(piece: Music21Piece, root: Path) -> dict[str, Any]:
    import symusic
    from music21 import converter, harmony, stream

    info = MUSIC21_COLLECTIONS[piece.collection]
    options = {} if piece.number is None else {"number": piece.number}
    parsed = converter.parse(str(root / piece.path), forceSource=True, **options)
    if piece.voices:
        score = _merge_voices(parsed)
    else:
        score = parsed.scores[0] if isinstance(parsed, stream.Opus) else parsed
    _unshare(score)
    try:
        score = score.expandRepeats()
        expanded = True
    except Exception:  # badly formed repeats (music21's ExpanderException and others): written once
        expanded = False
    parts = list(score.parts)
    if not parts:
        raise ValueError("no parts")
    symbols: list[tuple[float, Any]] = []
    for part in parts:
        for symbol in list(part.recurse().getElementsByClass(harmony.ChordSymbol)):
            symbols.append((float(symbol.getOffsetInHierarchy(score)), symbol))
            symbol.activeSite.remove(symbol)  # a chord symbol is not a note of the part
    result = symusic.Score(TICKS_PER_QUARTER)
    _conductor(parts, result, TICKS_PER_QUARTER, info.tempo_bpm or DEFAULT_TEMPO_BPM)
    for index, part in enumerate(parts, start=1):
        embedded = part.getInstrument(returnDefault=False)
        name = " ".join(str(part.partName or getattr(embedded, "partName", None) or "").split())
        if _GENERIC_NAME.match(name):
            name = "Melody" if len(parts) == 1 else f"Part {index}"
        track = symusic.Track(name=name, program=part_program(name, embedded, info), is_drum=False)
        for tick, duration, pitch, velocity in _part_notes(part, TICKS_PER_QUARTER):
            track.notes.append(symusic.Note(tick, duration, pitch, velocity))
        if len(track.notes) > 0:
            result.tracks.append(track)
    if info.chords is not None and symbols:
        track = symusic.Track(name=CHORD_TRACK_NAME, program=info.chords, is_drum=False)
        for tick, duration, pitch in chord_notes(symbols, float(score.highestTime), TICKS_PER_QUARTER):
            track.notes.append(symusic.Note(tick, duration, pitch, CHORD_VELOCITY))
        if len(track.notes) > 0:
            result.tracks.append(track)
    pad, meter = pickup_padding(parts[0])
    if pad > 0:
        shift_after_pickup(result, round(pad * TICKS_PER_QUARTER), meter)
    md = score.metadata
    return {
        "midi": result.dumps_midi(),
        "title": str(md.title) if md is not None and md.title else None,
        "composer": str(md.composer) if md is not None and md.composer else None,
        "tracks": [{"name": track.name, "program": int(track.program)} for track in result.tracks],
        "chord_symbols": len(symbols),
        "repeats_expanded": expanded,
        "pickup_padding_quarters": pad,
    }


class _Timeout(BaseException):  # not an Exception, so that music21's own handlers do not catch it
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout(f"took more than {CONVERT_TIMEOUT_S} s")


def convert_piece(piece: Music21Piece, root: Path) -> dict[str, Any]:
    """Convert one piece; return ``{"ok": True, "midi": bytes, "title", "composer", "tracks",
    "chord_symbols"}`` or ``{"ok": False, "error": "<type>: <message>"}`` (never raises).

    ``tracks`` lists ``{"name", "program"}`` per part, in order, then the chord track.
    ``root`` is the corpus folder. In the main thread of a Unix process a conversion is
    stopped after :data:`CONVERT_TIMEOUT_S` seconds (then ``"timeout": True``).
    """
    timed = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, _alarm) if timed else None
    if timed:
        signal.alarm(CONVERT_TIMEOUT_S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # music21 warns about many harmless notation details
            return {"ok": True, **_convert(piece, root)}
    except (Exception, _Timeout) as exc:  # music21 raises many unrelated types; a bad work is skipped
        message = " ".join(str(exc).split())[:200]
        return {
            "ok": False,
            "error": f"{type(exc).__name__}: {message}",
            "timeout": isinstance(exc, _Timeout),
        }
    finally:
        if timed:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

"""Reading and writing MIDI files as symusic ``Score`` objects, with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from symusic import Score
from symusic.core import ScoreTick

from notewave.core.io import atomic_path
from notewave.errors import MidiError

MidiLike = Union[str, "os.PathLike[str]", bytes, ScoreTick]


def midi_name(midi: object) -> str:
    """How messages name a MIDI input: the path of a file, else "the given Score" / "the given MIDI bytes"."""
    if isinstance(midi, Score):
        return "the given Score"
    if isinstance(midi, bytes | bytearray):
        return "the given MIDI bytes"
    if isinstance(midi, str | os.PathLike):
        return str(Path(midi))
    return f"the given {type(midi).__name__}"


def load_score(midi: MidiLike, *, allow_drums_only: bool = True) -> Score:
    """Load a MIDI file (path or bytes) or pass a ``Score`` through, checking it has notes.

    Returns:
        A symusic ``Score`` with ticks as time unit.

    Raises:
        MidiError: the file is missing, not a MIDI file, corrupt or has no notes, or (when
            ``allow_drums_only`` is false) has only drum notes. The message names the file.
    """
    name = midi_name(midi)
    if isinstance(midi, Score):
        score = midi
    elif isinstance(midi, bytes | bytearray):
        try:
            score = Score.from_midi(bytes(midi))
        except Exception as exc:
            raise MidiError(f"{name} are not a readable MIDI file: {exc}") from exc
    elif isinstance(midi, str | os.PathLike):
        path = Path(midi)
        if not path.is_file():
            raise MidiError(f"MIDI file not found: {path}")
        if path.stat().st_size == 0:
            raise MidiError(f"MIDI file is empty: {path}")
        try:
            # From bytes: symusic refuses paths without a MIDI file extension.
            score = Score.from_midi(path.read_bytes())
        except Exception as exc:
            raise MidiError(f"{path} is not a readable MIDI file: {exc}") from exc
    else:
        raise MidiError(f"expected a MIDI path, MIDI bytes or a symusic Score, not {type(midi).__name__}")
    if len(score.tracks) == 0 or score.note_num() == 0:  # symusic drops tracks without notes on reading
        raise MidiError(f"{name} has no notes")
    if not allow_drums_only and all(t.is_drum for t in score.tracks if t.notes):
        raise MidiError(f"{name} holds only drum notes; give a prompt with at least one pitched track")
    return score


def save_score(score: Score, path: str | os.PathLike[str]) -> Path:
    """Write ``score`` to the MIDI file ``path`` atomically; returns the path."""
    target = Path(path)
    with atomic_path(target) as tmp:
        score.dump_midi(str(tmp))
    return target

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


def load_score(midi: MidiLike, *, allow_drums_only: bool = True) -> Score:
    """Load a MIDI file (path or bytes) or pass a ``Score`` through, checking it has notes.

    Returns:
        A symusic ``Score`` with ticks as time unit.

    Raises:
        MidiError: the file is missing, not a MIDI file, corrupt, has no tracks or no
            notes, or (when ``allow_drums_only`` is false) only drum notes. The message
            names the file.
    """
    if isinstance(midi, Score):
        score, name = midi, "the given Score"
    elif isinstance(midi, bytes | bytearray):
        name = "the given MIDI bytes"
        try:
            score = Score.from_midi(bytes(midi))
        except Exception as exc:
            raise MidiError(f"{name} are not a readable MIDI file: {exc}") from exc
    elif isinstance(midi, str | os.PathLike):
        path = Path(midi)
        name = str(path)
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
    if len(score.tracks) == 0:
        raise MidiError(f"{name} has no tracks and so no notes")
    if score.note_num() == 0:
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

"""Training audio for the codec: real audio files and FluidSynth renders of MIDI, as crops.

Files are downmixed to mono, resampled to the codec's rate and held as int16 in memory;
validation uses held-out tracks: the files below ``train/`` and ``valid/`` folders (for audio, a
``test/`` folder where its group has no ``valid/``, as ``notewave data game-music`` writes them), and
every ``every``-th file, in sorted path order, of the files outside such folders.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from notewave.core.audio_io import load_audio
from notewave.core.io import find_files
from notewave.errors import DataError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".mp3"}
MIDI_SUFFIXES = {".mid", ".midi"}
WESNOTH_MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
SPLIT_FOLDERS = ("train", "valid", "test")


def _files(folder: str | os.PathLike[str], suffixes: set[str]) -> list[Path]:
    return find_files(folder, suffixes)


def split_tracks(files: Sequence[Path], every: int = 5) -> tuple[list[Path], list[Path]]:
    """``(train, valid)``: files ``every-1, 2*every-1, ...`` (0-based) of ``files`` are held out."""
    if every < 2:
        return list(files), []
    return [f for i, f in enumerate(files) if i % every != every - 1], [
        f for i, f in enumerate(files) if i % every == every - 1
    ]


def split_by_folders(
    root: Path, files: Sequence[Path], held: Sequence[str] = ("valid", "test")
) -> tuple[list[Path], list[Path], list[Path]]:
    """``(train, held_out, loose)`` of ``files`` below ``root`` by their split folders.

    A file's split folder is the first folder named ``train``, ``valid`` or ``test`` on its path
    below ``root``; files sharing the path before it form a group (``OUT/wesnoth/train`` and
    ``OUT/wesnoth/test`` are one group). Files in ``train/`` train; a group's held-out files are
    those of the first name in ``held`` that the group has (``("valid", "test")``: ``valid/``,
    else ``test/``); its other split folders are not used. Files outside any split folder, and
    the files of a group with neither ``train/`` nor a ``held`` folder (for MIDI, a clean clone's
    ``data/jsb``, which holds only ``test/``), are returned as ``loose`` for the caller's
    every-n-th rule. All three lists are sorted.
    """
    groups: dict[tuple[str, ...], dict[str, list[Path]]] = {}
    loose = []
    for path in files:
        parts = path.relative_to(root).parts[:-1]
        index = next((i for i, part in enumerate(parts) if part in SPLIT_FOLDERS), None)
        if index is None:
            loose.append(path)
        else:
            groups.setdefault(parts[:index], {}).setdefault(parts[index], []).append(path)
    train, valid = [], []
    for group in groups.values():
        if "train" not in group and not any(h in group for h in held):
            loose += [path for paths in group.values() for path in paths]
            continue
        train += group.get("train", [])
        name = next((h for h in held if h in group), None)
        valid += group[name] if name else []
    return sorted(train), sorted(valid), sorted(loose)


def split_folder(
    folder: str | os.PathLike[str], midi: bool = False, every: int = 5
) -> tuple[list[Path], list[Path]]:
    """Training and held-out files of an audio (or MIDI) folder (searched recursively).

    Files below split folders follow :func:`split_by_folders`: ``train/`` trains, ``valid/``
    validates, and for audio a ``test/`` beside a ``train/`` with no ``valid/`` validates (the
    layout of ``notewave data game-music``); MIDI folders never validate on ``test/``. The other
    files are split by :func:`split_tracks` (every ``every``-th file held out).

    Raises:
        DataError: missing folder or no files.
    """
    suffixes, root = (MIDI_SUFFIXES if midi else AUDIO_SUFFIXES), Path(folder)
    files = _files(root, suffixes)
    train, valid, loose = split_by_folders(root, files, ("valid",) if midi else ("valid", "test"))
    loose_train, loose_valid = split_tracks(loose, every)
    return train + loose_train, valid + loose_valid


class AudioSet:
    """Mono tracks in memory (int16) at one rate, with random crops for training.

    Args:
        tracks: float32 arrays ``[samples]`` in [-1, 1] at ``sample_rate`` Hz.
        names: a name per track (file path).
    """

    def __init__(self, tracks: Sequence[np.ndarray], names: Sequence[str], sample_rate: int):
        self.sample_rate = sample_rate
        self.names = list(names)
        self.tracks = [torch.from_numpy(np.round(np.clip(t, -1, 1) * 32767).astype(np.int16)) for t in tracks]

    @classmethod
    def from_files(
        cls, files: Sequence[Path], sample_rate: int, max_seconds: float | None = None, progress: bool = True
    ) -> AudioSet:
        """Load audio files (the first ``max_seconds`` of each; None: all). AudioError for a bad file."""
        bar = tqdm(files, desc="load audio", unit="file", disable=not progress)
        return cls(
            [load_audio(f, sample_rate, duration=max_seconds)[0][0] for f in bar],
            [str(f) for f in files],
            sample_rate,
        )

    @classmethod
    def from_midi(
        cls, files: Sequence[Path], sample_rate: int, soundfont: str | None = None, progress: bool = True
    ) -> AudioSet:
        """Render MIDI files once with FluidSynth (mono, loudness-normalised); RenderError/MidiError."""
        from notewave.bridge.render import render_midi

        bar = tqdm(files, desc="render MIDI", unit="file", disable=not progress)
        tracks = [render_midi(f, sample_rate, soundfont=soundfont, normalize="loudness")[0][0] for f in bar]
        return cls(tracks, [str(f) for f in files], sample_rate)

    def extend(self, other: AudioSet) -> None:
        self.tracks += other.tracks
        self.names += other.names

    @property
    def seconds(self) -> float:
        return sum(len(t) for t in self.tracks) / self.sample_rate

    def sample_batch(
        self, batch_size: int, length: int, generator: torch.Generator, tries: int = 8
    ) -> torch.Tensor:
        """float32 ``[batch_size, 1, length]`` crops: track chosen in proportion to its length, then a
        uniform start; near-silent crops (RMS < -60 dBFS) are redrawn up to ``tries`` times."""
        if not self.tracks:
            raise DataError("no training audio")
        weights = torch.tensor([float(len(t)) for t in self.tracks])
        out = torch.zeros(batch_size, 1, length)
        for b in range(batch_size):
            for _ in range(tries):
                track = self.tracks[int(torch.multinomial(weights, 1, generator=generator))]
                start = int(torch.randint(max(1, len(track) - length + 1), (1,), generator=generator))
                crop = track[start : start + length].float() / 32767
                if crop.pow(2).mean().sqrt() > 1e-3:
                    break
            out[b, 0, : len(crop)] = crop
        return out

    def eval_clips(self, seconds: float, per_track: int) -> torch.Tensor:
        """float32 ``[M, 1, seconds * rate]``: ``per_track`` evenly spaced clips per track (zero-padded)."""
        length = int(round(seconds * self.sample_rate))
        clips = []
        for track in self.tracks:
            track = F.pad(track.float() / 32767, (0, max(0, length - len(track))))
            for start in np.linspace(0, len(track) - length, per_track + 2)[1:-1].astype(int).tolist():
                clips.append(track[start : start + length])
        return torch.stack(clips)[:, None] if clips else torch.zeros(0, 1, length)

"""Training data of the audio LM: encoded tracks, their cache, and crops with their conditions.

Data preparation (once, kept in memory and cached in ``RUN_DIR/data.safetensors``):

* audio folders (``--audio DIR[:STYLE]``; WAV/FLAC/OGG/MP3, searched recursively): each track is
  loaded as mono at the codec rate, encoded by the frozen codec into codes ``[K, T]`` and
  analysed into a per-frame argmax chroma ``[T]`` (:func:`~notewave.bridge.chroma.chroma_from_audio`);
  its text is ``--audio-text`` with ``{title}`` (the file name in words) and ``{style}`` filled in;
* MIDI folders (``--midi DIR[:STYLE]``): each file is rendered with FluidSynth
  (:func:`~notewave.bridge.render.render_midi`) and encoded; its chroma comes straight from the
  notes (:func:`~notewave.bridge.chroma.chroma_from_midi`), its text is ``--midi-text``;
* the style tag of a folder is ``STYLE`` or the folder's name (its parent's for
  ``train``/``valid``/``test`` folders).

Held out for validation (:func:`split_files`, the rule of the codec's
:func:`~notewave.audio.codec.data.split_folder`): files below ``train/`` folders train, files below
``valid/`` folders (for audio, ``test/`` where there is no ``valid/`` beside the ``train/``: the
layout of ``notewave data game-music``) validate, and of the files outside such folders every 10th
is held out (at least one of two or more). Training draws random crops of ``--segment`` seconds
(:class:`CropSampler`); validation uses fixed windows of held-out tracks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from notewave.audio.lm.conditioning import ConditionConfig, Conditions
from notewave.audio.lm.melody import AUDIO_SUFFIXES, MIDI_SUFFIXES
from notewave.core.io import atomic_path
from notewave.errors import DataError

DEFAULT_AUDIO_TEXT = "{style} music: {title}"
DEFAULT_MIDI_TEXT = "Bach chorale, church organ"
_SPLIT_NAMES = ("train", "valid", "test")
_CHUNK_SECONDS = 20.0  # the codec encodes long tracks in pieces of this length


@dataclass
class Track:
    """One encoded track: codes int64 ``[K, T]``, argmax chroma int64 ``[T]`` (-1 silent), text, style."""

    name: str
    codes: torch.Tensor
    chroma: torch.Tensor
    text: str | None
    style: str | None


def parse_source(source: str) -> tuple[Path, str]:
    """``"DIR"`` or ``"DIR:STYLE"`` -> ``(folder, style)``; the default style is the folder's name."""
    folder, _, style = (
        source.rpartition(":") if ":" in source and not Path(source).exists() else (source, "", "")
    )
    path = Path(folder)
    if not style:
        style = path.parent.name if path.name in _SPLIT_NAMES else path.name
    return path, style or "default"


def title_words(path: Path) -> str:
    """A file name in words: ``the_king-is_dead.ogg`` -> ``"the king is dead"``."""
    return re.sub(r"[\s_\-.]+", " ", path.stem).strip()


def split_files(folder: Path, suffixes: Sequence[str], midi: bool = False) -> tuple[list[Path], list[Path]]:
    """Training and validation files of a folder, searched recursively (hidden files skipped).

    Split folders follow :func:`~notewave.audio.codec.data.split_by_folders` (held out: ``valid/``,
    and for audio ``test/`` where a group has no ``valid/``); of the other files every 10th is held
    out (the last one when there are 2 to 9).

    Raises:
        DataError: a missing folder, no such files, or no training file.
    """
    from notewave.audio.codec.data import split_by_folders
    from notewave.core.io import find_files

    files = find_files(folder, set(suffixes))
    train, valid, loose = split_by_folders(folder, files, ("valid",) if midi else ("valid", "test"))
    held = {i for i in range(len(loose)) if i % 10 == 9} or ({len(loose) - 1} if len(loose) > 1 else set())
    train += [p for i, p in enumerate(loose) if i not in held]
    valid += [p for i, p in enumerate(loose) if i in held]
    if not train:
        raise DataError(f"no training files ({', '.join(sorted(suffixes))}) in {folder}")
    return train, valid


def _encode(codec: Any, wav: np.ndarray) -> torch.Tensor:
    """Codes int64 ``[K, ceil(N / hop)]`` of mono float32 ``[1, N]`` audio, encoded in chunks (the K
    main codebooks: an audio LM never reads a detail stream's, so it is not run)."""
    chunk, k = int(_CHUNK_SECONDS * codec.frame_rate) * codec.hop_length, codec.config.num_codebooks
    parts = [
        codec.encode(torch.from_numpy(wav[None, :, i : i + chunk]), n_q=k)
        for i in range(0, wav.shape[-1], chunk)
    ]
    return torch.cat(parts, dim=2)[0]


def _argmax_index(chroma: np.ndarray) -> torch.Tensor:
    """``[12, T]`` chroma -> int64 ``[T]`` strongest pitch class, -1 for silent frames."""
    index = chroma.argmax(0).astype(np.int64)
    index[chroma.max(0) <= 0] = -1
    return torch.from_numpy(index)


def encode_track(
    codec: Any, path: Path, kind: str, text: str | None, style: str, max_seconds: float | None
) -> Track:
    """Encode one audio (``kind="audio"``) or MIDI (``"midi"``, rendered) file into a :class:`Track`.

    Raises:
        AudioError, MidiError, RenderError, SoundfontError: unreadable files or no FluidSynth.
    """
    from notewave.bridge.chroma import chroma_from_audio, chroma_from_midi
    from notewave.core.audio_io import load_audio

    rate = codec.sample_rate
    if kind == "audio":
        wav, _ = load_audio(path, rate, mono=True, duration=max_seconds)
        chroma = chroma_from_audio(wav, rate, frame_rate=codec.frame_rate, argmax=True)
    else:
        from notewave.bridge.render import render_midi

        wav, _ = render_midi(path, sample_rate=rate, normalize="loudness")
        if max_seconds is not None:
            wav = wav[:, : int(max_seconds * rate)]
        seconds = wav.shape[-1] / rate
        chroma = chroma_from_midi(path, frame_rate=codec.frame_rate, duration=seconds, argmax=True)
    codes = _encode(codec, wav)
    frames = codes.shape[1]
    index = _argmax_index(chroma)[:frames]
    index = torch.cat([index, index.new_full((frames - index.shape[0],), -1)])
    return Track(f"{kind}:{path}", codes, index, text, style)


def prepare_tracks(
    codec: Any,
    audio: Sequence[str] = (),
    midi: Sequence[str] = (),
    audio_text: str = DEFAULT_AUDIO_TEXT,
    midi_text: str = DEFAULT_MIDI_TEXT,
    max_files: int | None = None,
    max_seconds: float | None = None,
    progress: bool = True,
) -> tuple[list[Track], list[Track]]:
    """Encode every source into training and validation :class:`Track` lists (see the module docstring).

    Raises:
        DataError: no sources, a missing folder or an empty one.
    """
    from tqdm import tqdm

    jobs: list[tuple[Path, str, str, str, bool]] = []
    for sources, kind, suffixes in ((audio, "audio", AUDIO_SUFFIXES), (midi, "midi", MIDI_SUFFIXES)):
        for source in sources:
            folder, style = parse_source(source)
            train, valid = split_files(folder, suffixes, midi=kind == "midi")
            if max_files is not None:
                train, valid = train[:max_files], valid[: max(1, max_files // 10)]
            for path in train + valid:
                template = audio_text if kind == "audio" else midi_text
                text = template.format(title=title_words(path), style=style)
                jobs.append((path, kind, text, style, path in valid))
    if not jobs:
        raise DataError("give at least one --audio or --midi folder")
    train_tracks, valid_tracks = [], []
    for path, kind, text, style, held in tqdm(jobs, desc="encode", unit="file", disable=not progress):
        track = encode_track(codec, path, kind, text, style, max_seconds)
        (valid_tracks if held else train_tracks).append(track)
    return train_tracks, valid_tracks


def save_tracks(path: Path, tracks: dict[str, list[Track]], meta: dict[str, Any]) -> None:
    """Cache encoded tracks in one safetensors file (atomic); ``meta`` must match to reuse it."""
    tensors, info = {}, {"meta": meta, "splits": {}}
    for split, items in tracks.items():
        info["splits"][split] = [{"name": t.name, "text": t.text, "style": t.style} for t in items]
        for i, track in enumerate(items):
            tensors[f"{split}.{i}.codes"] = track.codes.to(torch.int16).contiguous()
            tensors[f"{split}.{i}.chroma"] = track.chroma.to(torch.int8).contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"info": json.dumps(info)})


def load_tracks(path: Path, meta: dict[str, Any]) -> dict[str, list[Track]] | None:
    """Tracks cached by :func:`save_tracks` with the same ``meta``, or ``None``."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            info = json.loads(handle.metadata()["info"])
            if info["meta"] != meta:
                return None
            return {
                split: [
                    Track(
                        t["name"],
                        handle.get_tensor(f"{split}.{i}.codes").long(),
                        handle.get_tensor(f"{split}.{i}.chroma").long(),
                        t["text"],
                        t["style"],
                    )
                    for i, t in enumerate(items)
                ]
                for split, items in info["splits"].items()
            }
    except Exception:
        return None


def one_hot_chroma(index: torch.Tensor) -> torch.Tensor:
    """int64 ``[..., T]`` pitch-class indices (-1 silent) -> float32 ``[..., 12, T]`` one-hot chroma."""
    hot = torch.nn.functional.one_hot(index.clamp(min=0), 12).float() * (index >= 0).unsqueeze(-1).float()
    return hot.movedim(-1, -2)


class CropSampler:
    """Random (training) or fixed (validation) windows of ``frames`` frames with their conditions."""

    def __init__(
        self, tracks: Sequence[Track], frames: int, config: ConditionConfig, texts: dict[str, torch.Tensor]
    ):
        self.tracks = [t for t in tracks if t.codes.shape[1] >= frames]
        self.frames, self.config, self.texts = frames, config, texts
        lengths = torch.tensor([t.codes.shape[1] - frames + 1 for t in self.tracks], dtype=torch.float)
        self.weights = lengths / lengths.sum() if len(self.tracks) else lengths

    def conditions(self, items: Sequence[tuple[Track, int]]) -> Conditions:
        cond = Conditions.empty(len(items), self.frames, self.config.text_dim)
        for row, (track, start) in enumerate(items):
            if self.config.melody:
                cond.melody[row] = one_hot_chroma(track.chroma[start : start + self.frames])
                cond.has_melody[row] = True
            if self.config.text and track.text in self.texts:
                cond.text[row] = self.texts[track.text]
                cond.has_text[row] = True
            if track.style in self.config.styles:
                cond.style[row] = self.config.styles.index(track.style)
        return cond

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, Conditions]:
        picks = torch.multinomial(self.weights, size, replacement=True, generator=generator).tolist()
        items = []
        for i in picks:
            track = self.tracks[i]
            start = int(torch.randint(track.codes.shape[1] - self.frames + 1, (1,), generator=generator))
            items.append((track, start))
        codes = torch.stack([t.codes[:, s : s + self.frames] for t, s in items])
        return codes, self.conditions(items)

    def windows(self, limit: int) -> list[tuple[Track, int]]:
        """Up to ``limit`` non-overlapping windows, spread over the tracks (round robin)."""
        per_track = [list(range(0, t.codes.shape[1] - self.frames + 1, self.frames)) for t in self.tracks]
        out: list[tuple[Track, int]] = []
        for depth in range(max((len(p) for p in per_track), default=0)):
            out += [(t, p[depth]) for t, p in zip(self.tracks, per_track) if depth < len(p)]
        return out[:limit]

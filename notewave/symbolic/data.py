"""Training data of the composer: pieces as quantized notes, and token windows drawn from them.

A :class:`PieceSet` holds :class:`~notewave.symbolic.piece.Piece` objects with their style
labels; it reads MIDI folders (with the ``data.json`` of ``notewave data ...`` giving each
piece's style) and saves/loads itself as one ``.npz`` of arrays (a cache, and what a
training job on another machine carries). :func:`training_window` draws one window: the
header, then bars from a random bar line, in a random transposition; a share of windows
use the bar-fill layout (a span of bars, or whole tracks, moved to the end) so the same
model continues, infills and accompanies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from notewave.core.io import atomic_path, find_files
from notewave.core.midi import load_score
from notewave.errors import DataError, MidiError, TokenizerError
from notewave.symbolic.layout import bar_ids, piece_ids
from notewave.symbolic.piece import Piece, piece_from_score
from notewave.symbolic.vocab import Vocab, tempo_bin

IGNORE = -100
MIDI_SUFFIXES = {".mid", ".midi"}
SHIFTS = tuple(range(-5, 7))  # transposition augmentation: every key once


def midi_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Sorted MIDI files (``.mid``/``.midi``, any case) below ``folder``.

    Raises:
        DataError: the folder does not exist or holds no MIDI file.
    """
    return find_files(folder, MIDI_SUFFIXES, kind="MIDI")


def folder_styles(folder: Path, default: str | None) -> dict[str, str | None]:
    """``{file name: style}`` from ``folder/data.json`` (``notewave data`` cards); ``default`` when absent."""
    card = folder / "data.json"
    if not card.is_file():
        return {}
    pieces = json.loads(card.read_text(encoding="utf-8")).get("pieces", [])
    return {
        Path(p["file"]).name: p.get("style", default) for p in pieces if isinstance(p, dict) and "file" in p
    }


@dataclass
class PieceSet:
    """Pieces with their style labels and names (file stems)."""

    pieces: list[Piece] = field(default_factory=list)
    styles: list[str | None] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @classmethod
    def from_files(
        cls,
        files: Sequence[Path],
        style: str | None = None,
        progress: bool = True,
        styles: dict | None = None,
    ) -> PieceSet:
        """Read MIDI files; a file that cannot be read or quantized is skipped and listed in ``skipped``.

        ``styles`` maps file names to styles (else ``style`` is used for every piece).
        """
        out = cls()
        for path in tqdm(files, desc="read MIDI", disable=not progress, unit="file"):
            try:
                piece = piece_from_score(load_score(path), str(path), keep_tracks="largest")
            except (MidiError, TokenizerError) as exc:
                out.skipped.append(str(exc))
                continue
            if not len(piece.notes):
                out.skipped.append(f"{path}: no notes in range")
                continue
            out.pieces.append(piece)
            out.styles.append((styles or {}).get(path.name, style))
            out.names.append(path.stem)
        return out

    def extend(self, other: PieceSet) -> None:
        self.pieces += other.pieces
        self.styles += other.styles
        self.names += other.names
        self.skipped += other.skipped

    @property
    def notes(self) -> int:
        return sum(len(p.notes) for p in self.pieces)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write every piece into one ``.npz`` (no pickle) atomically."""
        offsets = np.cumsum([0] + [len(p.notes) for p in self.pieces])
        bar_offsets = np.cumsum([0] + [p.bars for p in self.pieces])
        meta = {"styles": self.styles, "names": self.names, "programs": [p.programs for p in self.pieces]}
        arrays = {
            "notes": np.concatenate([p.notes for p in self.pieces])
            if self.pieces
            else np.zeros((0, 6), np.int32),
            "meters": np.asarray([m for p in self.pieces for m in p.meters], np.int16).reshape(-1, 2),
            "tempos": np.concatenate([p.tempos for p in self.pieces]).astype(np.float32)
            if self.pieces
            else np.zeros(0, np.float32),
            "offsets": offsets,
            "bar_offsets": bar_offsets,
            "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
        }
        target = Path(path)
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PieceSet:
        """Read a ``.npz`` written by :meth:`save`.

        Raises:
            DataError: a missing or malformed file.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                notes, meters, tempos = data["notes"], data["meters"], data["tempos"]
                offsets, bar_offsets = data["offsets"], data["bar_offsets"]
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{path} is not a notewave piece set: {exc}") from None
        out = cls(styles=meta["styles"], names=meta["names"])
        for i, programs in enumerate(meta["programs"]):
            b0, b1 = int(bar_offsets[i]), int(bar_offsets[i + 1])
            piece_meters = [(int(n), int(d)) for n, d in meters[b0:b1]]
            out.pieces.append(
                Piece(
                    programs,
                    piece_meters,
                    tempos[b0:b1].astype(np.float64),
                    notes[offsets[i] : offsets[i + 1]],
                )
            )
        return out


def bar_sizes(vocab: Vocab, piece: Piece) -> np.ndarray:
    """Tokens in each bar of ``piece`` read from its start, int64 ``[B]`` (transposition does
    not change them; cached on the piece)."""
    cached = getattr(piece, "_bar_sizes", None)
    if cached is not None:
        return cached
    offsets = piece.bar_offsets()
    sizes = np.zeros(piece.bars, np.int64)
    previous = None
    for bar in range(piece.bars):
        rows = piece.notes[offsets[bar] : offsets[bar + 1]]
        sizes[bar] = len(bar_ids(vocab, piece, bar, rows, previous))
        previous = (piece.meters[bar], tempo_bin(float(piece.tempos[bar])))
    piece._bar_sizes = sizes  # type: ignore[attr-defined]
    return sizes


def _window_bars(vocab: Vocab, piece: Piece, start: int, budget: int) -> list[int]:
    """Token counts of bars ``start, start+1, ...`` while their sum stays within ``budget``
    (at least one bar; a window's first bar may lack a TimeSig/Tempo token, so counts can
    be one or two high)."""
    sizes = bar_sizes(vocab, piece)[start:]
    fits = int(np.searchsorted(np.cumsum(sizes), budget, side="right"))
    return sizes[: max(1, fits)].tolist()


def window_start(vocab: Vocab, piece: Piece, budget: int, rng: np.random.Generator) -> int:
    """A random first bar from which the rest of the piece still fills ``budget`` tokens
    (bar 0 when the whole piece is shorter), so that windows are rarely half empty."""
    remaining = np.cumsum(bar_sizes(vocab, piece)[::-1])[::-1]
    last = int(np.nonzero(remaining >= budget)[0][-1]) if remaining[0] >= budget else 0
    return int(rng.integers(0, last + 1))


def choose_fills(piece: Piece, start: int, bars: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Slots ``(bar, track)`` of a bar-fill training window over bars ``start..start+bars-1``:
    a span of 1-4 bars of all tracks or of some tracks (infilling), or, for a piece with two
    or more tracks, some tracks over every bar (accompaniment)."""
    tracks = piece.tracks
    if tracks > 1 and rng.random() < 0.35:
        chosen = rng.choice(tracks, size=int(rng.integers(1, tracks)), replace=False)
        return [(bar, int(t)) for bar in range(start, start + bars) for t in sorted(chosen)]
    length = int(rng.integers(1, min(4, bars) + 1))
    first = start + int(rng.integers(0, bars - length + 1))
    if tracks > 1 and rng.random() < 0.5:
        chosen = rng.choice(tracks, size=int(rng.integers(1, tracks + 1)), replace=False)
    else:
        chosen = np.arange(tracks)
    return [(bar, int(t)) for bar in range(first, first + length) for t in sorted(chosen)]


def training_window(
    vocab: Vocab,
    piece: Piece,
    style: str | None,
    length: int,
    rng: np.random.Generator,
    shifts: Sequence[int] = SHIFTS,
    fill_share: float = 0.3,
    style_dropout: float = 0.1,
) -> tuple[list[int], list[int]]:
    """One training window of ``length`` inputs and targets (``IGNORE`` on the header and padding).

    The piece is transposed by a random shift of ``shifts`` that keeps it in range, the
    window starts on a random bar line, the style token is left out with probability
    ``style_dropout``; with probability ``fill_share`` the window uses the bar-fill layout.
    """
    allowed = piece.shifts_in_range(list(shifts))
    shift = int(rng.choice(allowed)) if allowed else 0
    moved = piece.transposed(shift) if shift else piece
    style = None if style is None or rng.random() < style_dropout else style
    header = len(piece.programs) + 3 + (style is not None)
    start = window_start(vocab, piece, length + 1 - header, rng)  # sizes cached on the original
    counts = _window_bars(vocab, piece, start, max(1, length + 1 - header))
    fills: list[tuple[int, int]] = []
    if len(counts) >= 2 and rng.random() < fill_share:
        bars = len(counts)
        while bars >= 1:
            fills = choose_fills(moved, start, bars, rng)
            if header + sum(counts[:bars]) + 4 * len(fills) <= length + 1:  # Fill, FillStart, Track, FillEnd
                break
            bars -= 1
        ids = piece_ids(vocab, moved, start, start + bars, style, fills)
    else:
        ids = piece_ids(vocab, moved, start, start + len(counts), style)
    ids = ids[: length + 1]
    targets = ids[1:]
    targets[: header - 1] = [IGNORE] * (header - 1)
    pad = length + 1 - len(ids)
    return ids[:-1] + [vocab.pad_id] * pad, targets + [IGNORE] * pad


def eval_windows(
    vocab: Vocab, piece: Piece, style: str | None, length: int, overlap: int = 2
) -> list[tuple[list[int], list[int]]]:
    """Windows that score every bar token of ``piece`` once (and ``EOS``), for validation NLL.

    Each window is the header plus bars from a bar line; the ``overlap`` bars before the
    first unscored bar are given again as context and not scored.
    """
    out = []
    header = len(piece.programs) + 3 + (style is not None)
    scored = 0
    while scored < piece.bars:
        start = max(0, scored - overlap)
        counts = _window_bars(vocab, piece, start, max(1, length - header))
        if start + len(counts) <= scored:  # the overlap alone fills the window: no overlap
            start = scored
            counts = _window_bars(vocab, piece, start, max(1, length - header))
        stop = start + len(counts)
        ids = piece_ids(vocab, piece, start, stop, style)[: length + 1]
        skip = header + sum(counts[: scored - start])
        targets = ids[1:]
        targets[: skip - 1] = [IGNORE] * (skip - 1)
        pad = length + 1 - len(ids)
        out.append((ids[:-1] + [vocab.pad_id] * pad, targets + [IGNORE] * pad))
        scored = stop
    return out

"""MIDI files to training windows of token ids, with transposition augmentation.

Every window starts with the conditioning prefix (``BOS``, style, instruments) and then
a crop of the piece's REMI tokens that begins on a ``Bar`` token, so the model always
sees its conditioning and learns to start at a bar line, as it does at generation time.
Targets of the prefix positions are ignored in the loss (``IGNORE``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from symusic import Score
from tqdm import tqdm

from notewave.core.io import find_files
from notewave.core.midi import load_score
from notewave.errors import DataError, MidiError, TokenizerError
from notewave.symbolic.tokenizer import MidiTokenizer

IGNORE = -100
MIDI_SUFFIXES = {".mid", ".midi"}


def midi_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Sorted MIDI files (``.mid``/``.midi``, any case) below ``folder``.

    Raises:
        DataError: when the folder does not exist or holds no MIDI file.
    """
    return find_files(folder, MIDI_SUFFIXES, kind="MIDI")


def transpose(score: Score, semitones: int) -> Score:
    """Copy of ``score`` with every pitched (non-drum) note moved by ``semitones``."""
    out = score.copy()
    for track in out.tracks:
        if not track.is_drum:
            track.shift_pitch(semitones, inplace=True)
    return out


def transpositions_in_range(score: Score, shifts: Sequence[int], low: int, high: int) -> list[int]:
    """The shifts that keep every pitched note inside ``[low, high)`` (the tokenizer's pitch range)."""
    pitches = [n.pitch for t in score.tracks if not t.is_drum for n in t.notes]
    if not pitches:
        return [0]
    lo, hi = min(pitches), max(pitches)
    return [s for s in shifts if lo + s >= low and hi + s < high]


@dataclass
class Piece:
    """One tokenized piece: its prefix and body ids, the indices of Bar tokens in the body, its note count."""

    prefix: list[int]
    body: list[int]
    prefix_no_style: list[int]
    bar_starts: list[int]
    notes: int


class TokenDataset:
    """Tokenized pieces (optionally in several transpositions) and window sampling.

    Args:
        files: MIDI files.
        tokenizer: the model's tokenizer.
        style: style token for every piece (``None`` for no style token).
        shifts: transpositions in semitones (``(0,)`` for none); shifts that would leave
            the pitch range are skipped per piece.
        progress: show a tqdm bar.

    Raises:
        DataError: when no file could be tokenized.
    """

    def __init__(
        self,
        files: Sequence[Path],
        tokenizer: MidiTokenizer,
        style: str | None = None,
        shifts: Sequence[int] = (0,),
        progress: bool = True,
    ):
        self.tokenizer = tokenizer
        bar_ids = {i for i in range(tokenizer.base_size) if tokenizer.base_tokens(i)[:1] == ["Bar_None"]}
        low, high = tokenizer.remi.config.pitch_range
        self.pieces: list[Piece] = []
        self.skipped: list[str] = []
        for path in tqdm(files, desc="tokenize", disable=not progress):
            try:
                score = load_score(path)
            except MidiError as exc:
                self.skipped.append(str(exc))
                continue
            for shift in transpositions_in_range(score, shifts, low, high):
                moved = transpose(score, shift) if shift else score
                try:
                    body = tokenizer.encode_body(moved) + [tokenizer.eos_id]
                except TokenizerError as exc:
                    self.skipped.append(f"{path}: {exc}")
                    break
                programs = tokenizer.programs_of(moved)
                prefix = tokenizer.prefix(style, programs)
                bars = [i for i, t in enumerate(body) if t in bar_ids]
                plain = tokenizer.prefix(None, programs)
                self.pieces.append(Piece(prefix, body, plain, bars or [0], moved.note_num()))
        if not self.pieces:
            raise DataError(f"none of the {len(files)} MIDI files could be tokenized")
        self._reweight()

    def _reweight(self) -> None:
        lengths = torch.tensor([len(p.body) for p in self.pieces], dtype=torch.float)
        self._weights = lengths / lengths.sum()

    def extend(self, other: TokenDataset) -> None:
        """Add the pieces of another dataset built with the same tokenizer."""
        self.pieces.extend(other.pieces)
        self.skipped.extend(other.skipped)
        self._reweight()

    @property
    def num_tokens(self) -> int:
        return sum(len(p.body) for p in self.pieces)

    def window(
        self, piece: Piece, start: int, length: int, drop_style: bool = False
    ) -> tuple[list[int], list[int]]:
        """Inputs and targets (each ``length`` ids) of the window at body index ``start``;
        ``drop_style`` leaves the style token out of the prefix (condition dropout)."""
        prefix = piece.prefix_no_style if drop_style else piece.prefix
        ids = (prefix + piece.body[start : start + length + 1 - len(prefix)])[: length + 1]
        targets = ids[1:]
        targets[: len(prefix) - 1] = [IGNORE] * (len(prefix) - 1)
        pad = length + 1 - len(ids)
        return ids[:-1] + [self.tokenizer.pad_id] * pad, targets + [IGNORE] * pad

    def sample_batch(
        self, batch_size: int, length: int, generator: torch.Generator, style_dropout: float = 0.1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows (piece chosen in proportion to its length, start on a random bar);
        the style token is left out with probability ``style_dropout`` so the model also
        works without one.

        Returns:
            ``(inputs, targets)``, int64 ``[batch_size, length]``.
        """
        inputs, targets = [], []
        choices = torch.multinomial(self._weights, batch_size, replacement=True, generator=generator)
        for index in choices.tolist():
            piece = self.pieces[index]
            start = piece.bar_starts[int(torch.randint(len(piece.bar_starts), (1,), generator=generator))]
            drop = float(torch.rand((), generator=generator)) < style_dropout
            x, y = self.window(piece, start, length, drop_style=drop)
            inputs.append(x)
            targets.append(y)
        return torch.tensor(inputs), torch.tensor(targets)

    def eval_windows(self, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every body token of every piece scored exactly once, in windows that each start
        with the prefix and, where possible, on a bar line (so later windows overlap the
        previous one's tail as context; targets already scored are ignored).

        Returns:
            A list of ``(inputs, targets)``, each int64 ``[1, length]``.
        """
        out = []
        for piece in self.pieces:
            offset = len(piece.prefix) - 1  # target index of the window's first body token
            room = length - offset
            start, scored = 0, 0
            while scored < len(piece.body):
                x, y = self.window(piece, start, length)
                already = scored - start
                if already > 0:
                    y[offset : offset + already] = [IGNORE] * already
                out.append((torch.tensor([x]), torch.tensor([y])))
                end = min(start + room, len(piece.body))
                scored = end
                bars = [b for b in piece.bar_starts if start < b < end]
                start = bars[-1] if bars and end < len(piece.body) else end
        return out

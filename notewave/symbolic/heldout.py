"""The held-out pieces a composer is evaluated on, per style, and loading the composer checkpoint
(:mod:`notewave.symbolic.evaluate`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from symusic import Score

from notewave.core.midi import load_score
from notewave.errors import CheckpointError, DataError, NotewaveError, TokenizerError
from notewave.paths import DATA_DIR
from notewave.symbolic.data import folder_styles, midi_files
from notewave.symbolic.model import MidiLM
from notewave.symbolic.quality import piece_bars
from notewave.symbolic.train import parse_sources
from notewave.symbolic.vocab import Vocab

#: Folders of ``notewave data ...`` used when no data is given (those with the split).
DEFAULT_SOURCES = ("jsb:bach", "freedoom", "mma", "music21")


@dataclass(frozen=True)
class HeldOut:
    """One held-out piece: its file, row label, the style token given to the model (None when
    the vocabulary has no such style) and the score."""

    path: Path
    style: str
    token: str | None
    score: Score


def default_sources(split: str) -> list[str]:
    """``DIR[:STYLE]`` of the :data:`DEFAULT_SOURCES` folders under ``data/`` that have ``split``."""
    out = []
    for source in DEFAULT_SOURCES:
        name, _, style = source.partition(":")
        if (DATA_DIR / name / split).is_dir():
            out.append(str(DATA_DIR / name) + (f":{style}" if style else ""))
    return out


def held_out(
    sources: Sequence[str], split: str, pieces: int, min_bars: int, styles: Sequence[str]
) -> dict[str, list[HeldOut]]:
    """``{style: pieces}`` (sorted by style): per style the first ``pieces`` readable files of
    ``DIR/split`` with at least ``min_bars`` bars. A piece's style comes from ``DIR/data.json``,
    else ``:STYLE``, else the folder name; ``styles`` are the model's style tokens.

    Raises:
        DataError: a missing folder or split, one without MIDI files, or no piece long enough.
    """
    out: dict[str, list[HeldOut]] = {}
    for folder, default in parse_sources(sources):
        labels = folder_styles(folder, default)
        for path in midi_files(folder / split):
            style = labels.get(path.name, default) or folder.name
            chosen = out.setdefault(style, [])
            if len(chosen) >= pieces:
                continue
            try:
                score = load_score(path)
            except NotewaveError:
                continue
            if piece_bars(score) >= min_bars:
                chosen.append(HeldOut(path, style, style if style in styles else None, score))
    out = {style: items for style, items in sorted(out.items()) if items}
    if not out:
        names = ", ".join(str(folder / split) for folder, _ in parse_sources(sources))
        raise DataError(f"no readable piece of at least {min_bars} bars in {names}")
    return out


def load_composer(path: str | os.PathLike[str]) -> tuple[MidiLM, Vocab]:
    """The model (CPU, eval mode) and vocabulary of a composer checkpoint folder.

    Raises:
        CheckpointError: a missing or unreadable checkpoint, or a vocabulary of another size.
    """
    model = MidiLM.from_pretrained(path)
    try:
        vocab = Vocab.load(path)
    except TokenizerError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from exc
    if len(vocab) != model.config.vocab_size:
        raise CheckpointError(f"checkpoint {path}: {len(vocab)} tokens, the model {model.config.vocab_size}")
    return model, vocab

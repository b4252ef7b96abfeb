"""The composer: a :class:`~notewave.symbolic.model.MidiLM` with its tokenizer, continuing MIDI.

:class:`Composer` assembles the symbolic building blocks (tokenizer, model, grammar-constrained
sampling of :mod:`notewave.symbolic.generate`) into the object a notebook or the CLI uses:
load a checkpoint folder, continue a MIDI file or ``symusic.Score`` on its bar grid.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from symusic import Score

from notewave.core.midi import MidiLike
from notewave.errors import CheckpointError, TokenizerError
from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT
from notewave.symbolic.generate import continue_midi
from notewave.symbolic.model import MidiLM
from notewave.symbolic.tokenizer import MidiTokenizer


class Composer:
    """A MIDI LM and the tokenizer whose ids it reads.

    Args:
        model: the transformer.
        tokenizer: its tokenizer (same vocabulary size).

    Raises:
        CheckpointError: the tokenizer's vocabulary does not match the model's.
    """

    def __init__(self, model: MidiLM, tokenizer: MidiTokenizer):
        if tokenizer.vocab_size != model.config.vocab_size:
            raise CheckpointError(
                f"the tokenizer has {tokenizer.vocab_size} tokens but the model {model.config.vocab_size}"
            )
        self.model = model
        self.tokenizer = tokenizer

    @property
    def styles(self) -> list[str]:
        """The style tokens (MuseNet's composer tokens) the model was trained with."""
        return list(self.tokenizer.styles)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str] = DEFAULT_SYMBOLIC_CHECKPOINT, map_location: str = "cpu"
    ) -> Composer:
        """Load a checkpoint folder (``model.safetensors``, ``config.json``, ``tokenizer.json``);
        default: the shipped model.

        Raises:
            CheckpointError: a missing, truncated or mismatching checkpoint or tokenizer.
        """
        model = MidiLM.from_pretrained(path, map_location=map_location)
        try:
            tokenizer = MidiTokenizer.load(path)
        except TokenizerError as exc:
            raise CheckpointError(f"checkpoint {path}: {exc}") from exc
        return cls(model, tokenizer)

    def save_pretrained(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Write the model and ``tokenizer.json`` to the folder ``path`` atomically (``kwargs``: those
        of :meth:`MidiLM.save_pretrained <notewave.symbolic.model.MidiLM.save_pretrained>`)."""
        files = self.tokenizer.checkpoint_files(kwargs.pop("extra_files", None))
        return self.model.save_pretrained(path, extra_files=files, **kwargs)

    def continue_midi(self, prompt: MidiLike, bars: int = 8, **options: Any) -> Score:
        """Continue ``prompt`` by ``bars`` bars on its bar grid, in its tracks, tempo and meter.

        ``options`` are those of :func:`notewave.symbolic.generate.continue_midi` (temperature,
        top_k, top_p, seed, style, constrained, programs, max_tokens, prompt_bars, progress), which
        also lists the errors raised. Returns prompt + continuation as one ``symusic.Score``.
        """
        return continue_midi(self.model, self.tokenizer, prompt, bars, **options)

"""The composer: a :class:`~notewave.symbolic.model.MidiLM` with its vocabulary, editing MIDI.

:class:`Composer` assembles the symbolic building blocks (multitrack tokens, grammar-constrained
sampling, MMM bar-fill) into the object a notebook or the CLI uses: load a checkpoint folder,
then continue, infill or accompany a MIDI file or ``symusic.Score`` on its own bar grid, and
save the result so that notation programs (MuseScore 3) import exactly its bars.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from symusic import Score

from notewave.bridge.notation import finish_at_bar
from notewave.core.midi import MidiLike, bar_grid, end_at, save_score
from notewave.errors import CheckpointError, TokenizerError
from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT
from notewave.symbolic import compose
from notewave.symbolic.model import MidiLM
from notewave.symbolic.vocab import Vocab


class Composer:
    """A MIDI LM and the vocabulary whose ids it reads.

    Args:
        model: the transformer.
        vocab: its multitrack vocabulary (same size).

    Raises:
        CheckpointError: the vocabulary does not match the model.
    """

    def __init__(self, model: MidiLM, vocab: Vocab):
        if len(vocab) != model.config.vocab_size:
            raise CheckpointError(
                f"the vocabulary has {len(vocab)} tokens but the model {model.config.vocab_size}"
            )
        self.model = model
        self.vocab = vocab

    @property
    def styles(self) -> list[str]:
        """The style tokens (MuseNet's composer tokens) the model was trained with."""
        return list(self.vocab.styles)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike[str] = DEFAULT_SYMBOLIC_CHECKPOINT, map_location: str = "cpu"
    ) -> Composer:
        """Load a checkpoint folder (``model.safetensors``, ``config.json``, ``tokenizer.json``);
        default: the shipped composer.

        Raises:
            CheckpointError: a missing, truncated or mismatching checkpoint or tokenizer.
        """
        model = MidiLM.from_pretrained(path, map_location=map_location)
        try:
            vocab = Vocab.load(path)
        except TokenizerError as exc:
            raise CheckpointError(f"checkpoint {path}: {exc}") from exc
        return cls(model, vocab)

    def save_pretrained(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Write the model and ``tokenizer.json`` to the folder ``path`` atomically (``kwargs``: those
        of :meth:`MidiLM.save_pretrained <notewave.symbolic.model.MidiLM.save_pretrained>`)."""
        extra = kwargs.pop("extra_files", None)

        def files(folder: Path) -> None:
            self.vocab.save(folder)
            if extra is not None:
                extra(folder)

        return self.model.save_pretrained(path, extra_files=files, **kwargs)

    @torch.no_grad()
    def logits(self, ids: Sequence[int]) -> torch.Tensor:
        """Next-token logits float32 ``[T, vocab]`` after each of the ids (one sequence from its
        start, at most the model's context), with the cursor rows when the model reads them.

        Raises:
            ConfigError: a sequence longer than the model's context.
        """
        x = torch.tensor([list(ids)], dtype=torch.long)
        cursor = self.model.cursor_rows(self.vocab, x)
        return self.model(x, cursor=cursor)[0].float()

    def continue_midi(self, prompt: MidiLike, bars: int = 8, **options: Any) -> Score:
        """Continue ``prompt`` by ``bars`` bars in its tracks, tempo and meter (options and errors:
        :func:`notewave.symbolic.compose.continue_midi`: style, instruments, prompt_bars, seed,
        temperature, top_k, top_p, progress, keep_playing, key, key_balance, density, lengths,
        range_margin). Returns prompt + continuation."""
        return compose.continue_midi(self.model, self.vocab, prompt, bars, **options)

    def infill(self, midi: MidiLike, bars: tuple[int, int], tracks: Any = None, **options: Any) -> Score:
        """Regenerate bars ``bars[0]..bars[1]`` (1-based, inclusive) of ``tracks`` (names; all by
        default); options (seed, sampling, guides, ``range_margin``) and errors: see
        :func:`notewave.symbolic.compose.infill_midi`."""
        return compose.infill_midi(self.model, self.vocab, midi, bars, tracks, **options)

    def accompany(self, midi: MidiLike, add: Any, **options: Any) -> Score:
        """Add parts (``"satb"``, ``"bass,drums"``, ``"piano"``, ``"Lead=81"``) under ``midi``; see
        :func:`notewave.symbolic.compose.accompany_midi`."""
        return compose.accompany_midi(self.model, self.vocab, midi, add, **options)

    @staticmethod
    def save(score: Score, path: str | os.PathLike[str]) -> Path:
        """Write ``score`` atomically as MIDI, ended on its last bar line the way notation programs
        count bars (:func:`notewave.bridge.notation.finish_at_bar`); the file's End of Track falls
        on that bar line, rests at the end included (:func:`notewave.core.midi.end_at`; MuseScore
        itself drops trailing bars that hold no note)."""
        end = int(bar_grid(score).lines[-1])
        return save_score(end_at(finish_at_bar(score, end), end), path)

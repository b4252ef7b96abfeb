"""MIDI tokenizer: miditok REMI with programs, tempos and time signatures, plus
MuseNet-style conditioning tokens.

A sequence is ``[BOS, Style_<name>, Instrument_<program> ..., <REMI tokens>]``. The REMI
part is miditok's (Huang & Yang 2020, "Pop Music Transformer"), with every instrument in
one token stream (``Program`` token before each note's ``Pitch``). The conditioning
tokens live after miditok's vocabulary (ids ``len(remi) ...``) so that an optional BPE
model trained by miditok (``tokenizer.train``) leaves them untouched. MuseNet (Payne
2019) prepends composer and instrument tokens in the same way.

Saved as one JSON file (miditok's format plus a ``notewave`` entry holding the styles).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from miditok import REMI, TokenizerConfig, TokSequence
from symusic import Score

from notewave.core.io import atomic_path
from notewave.errors import ConditioningError, TokenizerError

TOKENIZER_FILE = "tokenizer.json"
STYLE_PREFIX = "Style_"
INSTRUMENT_PREFIX = "Instrument_"
DRUM_PROGRAM = -1
PROGRAMS = list(range(-1, 128))

# Every option is set explicitly: defaults move between miditok releases (3.1 turned
# time signatures on by default).
REMI_OPTIONS: dict[str, Any] = {
    "pitch_range": (21, 109),
    "beat_res": {(0, 4): 8, (4, 12): 4},
    "num_velocities": 32,
    "special_tokens": ["PAD", "BOS", "EOS", "MASK"],
    "use_velocities": True,
    "use_chords": False,
    "use_rests": False,
    "use_tempos": True,
    "use_time_signatures": True,
    "use_key_signatures": False,
    "use_sustain_pedals": False,
    "use_pitch_bends": False,
    "use_control_changes": False,
    "use_programs": True,
    "one_token_stream_for_programs": True,
    "program_changes": False,
    "programs": PROGRAMS,
    "use_pitch_intervals": False,
    "use_pitchdrum_tokens": True,
    "num_tempos": 32,
    "tempo_range": (40, 250),
    "log_tempos": False,
    "remove_duplicated_notes": False,  # SATB unisons are two real notes
    "delete_equal_successive_tempo_changes": True,
    "delete_equal_successive_time_sig_changes": True,
    "time_signature_range": {8: [3, 12, 6], 4: [5, 6, 3, 2, 1, 4]},
    "use_bar_end_tokens": False,
    "add_trailing_bars": False,
}


class MidiTokenizer:
    """REMI tokens with conditioning tokens for styles and instruments.

    Args:
        styles: style (composer/collection) names the model is trained with, e.g.
            ``["bach"]``. Names must not contain spaces.
        remi: an existing miditok ``REMI`` tokenizer (default: a new one from
            :data:`REMI_OPTIONS`).

    Ids: ``0 .. len(remi)-1`` are miditok's (BPE ids when trained), then one id per style,
    then one per program ``-1..127`` (``-1`` is drums).
    """

    def __init__(self, styles: Sequence[str] = (), remi: REMI | None = None):
        self.remi = remi if remi is not None else REMI(TokenizerConfig(**REMI_OPTIONS))
        for name in styles:
            if not name or any(c.isspace() for c in name):
                raise ConditioningError(f"style names must be non-empty words, got {name!r}")
        self.styles = list(dict.fromkeys(styles))
        base = len(self.remi)
        self._style_ids = {name: base + i for i, name in enumerate(self.styles)}
        self._instrument_ids = {p: base + len(self.styles) + i for i, p in enumerate(PROGRAMS)}
        self.vocab_size = base + len(self.styles) + len(PROGRAMS)

    # ---- vocabulary -------------------------------------------------------------------
    @property
    def base_size(self) -> int:
        """Number of miditok ids (REMI or BPE); conditioning ids start here."""
        return len(self.remi)

    @property
    def pad_id(self) -> int:
        return self.remi["PAD_None"]

    @property
    def bos_id(self) -> int:
        return self.remi["BOS_None"]

    @property
    def eos_id(self) -> int:
        return self.remi["EOS_None"]

    def style_id(self, style: str) -> int:
        """Id of ``Style_<style>``; raises :class:`ConditioningError` for a style not trained on."""
        if style not in self._style_ids:
            known = ", ".join(self.styles) or "none"
            raise ConditioningError(f"unknown style {style!r}: this model knows the styles: {known}")
        return self._style_ids[style]

    def instrument_id(self, program: int) -> int:
        """Id of ``Instrument_<program>`` (program ``-1`` for drums, else 0..127)."""
        if program not in self._instrument_ids:
            raise ConditioningError(f"program must be -1 (drums) or 0..127, got {program}")
        return self._instrument_ids[program]

    def token_name(self, token_id: int) -> str:
        """Readable name of an id, e.g. ``Pitch_60``, ``Style_bach`` or ``Instrument_19``."""
        if token_id < self.base_size:
            if self.remi.is_trained:
                return " ".join(self.base_tokens(token_id))
            return self.remi[token_id]
        offset = token_id - self.base_size
        if offset < len(self.styles):
            return STYLE_PREFIX + self.styles[offset]
        return f"{INSTRUMENT_PREFIX}{PROGRAMS[offset - len(self.styles)]}"

    def base_tokens(self, token_id: int) -> list[str]:
        """The REMI tokens an id stands for: one, or several for a BPE id; ``[]`` for conditioning ids."""
        if token_id >= self.base_size:
            return []
        if not self.remi.is_trained:
            return [self.remi[token_id]]
        byte = self.remi._model.id_to_token(token_id)
        return list(self.remi._vocab_learned_bytes_to_tokens[byte])

    @property
    def time_signatures(self) -> list[tuple[int, int]]:
        """Meters the vocabulary has ``TimeSig`` tokens for, as ``(numerator, denominator)``, sorted
        by denominator then numerator (notewave's default: 1/4..6/4, 3/8, 6/8 and 12/8)."""
        return sorted(((int(n), int(d)) for n, d in self.remi.time_signatures), key=lambda ts: (ts[1], ts[0]))

    def check_time_signatures(self, score: Score, name: str = "the score") -> None:
        """Raise when ``score`` holds a meter the vocabulary lacks (``name`` names it in the message).

        miditok reads such a meter as 4/4 without a word, which puts every bar line in the wrong
        place; a model cannot be told a meter it has no token for without retraining.

        Raises:
            TokenizerError: naming the meter, its tick and the supported meters.
        """
        known = set(self.time_signatures)
        for ts in score.time_signatures:
            if (ts.numerator, ts.denominator) not in known:
                supported = ", ".join(f"{n}/{d}" for n, d in self.time_signatures)
                raise TokenizerError(
                    f"{name}: time signature {ts.numerator}/{ts.denominator} (at tick {ts.time}) is not one "
                    f"this model's tokenizer knows; supported: {supported}"
                )

    # ---- encoding ---------------------------------------------------------------------
    @staticmethod
    def programs_of(score: Score) -> list[int]:
        """Sorted distinct programs of a score's tracks with notes (``-1`` for drum tracks)."""
        return sorted({DRUM_PROGRAM if t.is_drum else int(t.program) for t in score.tracks if t.notes})

    def prefix(self, style: str | None = None, programs: Iterable[int] = ()) -> list[int]:
        """Conditioning prefix ``[BOS, Style_<style>?, Instrument_<p> ...]`` (int ids)."""
        ids = [self.bos_id]
        if style is not None:
            ids.append(self.style_id(style))
        ids.extend(self.instrument_id(p) for p in sorted(set(programs)))
        return ids

    def encode_body(self, score: Score) -> list[int]:
        """REMI (or BPE) ids of a score, without the conditioning prefix.

        Raises:
            TokenizerError: when miditok cannot tokenize the score.
        """
        try:
            seq = self.remi.encode(score)
        except Exception as exc:  # miditok raises plain exceptions on odd scores
            raise TokenizerError(f"miditok could not tokenize the score: {exc}") from exc
        if isinstance(seq, list):  # defensive: one_token_stream gives a single sequence
            seq = seq[0]
        return list(seq.ids)

    def encode(self, score: Score, style: str | None = None) -> list[int]:
        """Conditioning prefix (style, the score's programs) followed by the score's REMI ids."""
        return self.prefix(style, self.programs_of(score)) + self.encode_body(score)

    def decode(self, ids: Sequence[int]) -> Score:
        """Decode ids to a symusic ``Score`` (ticks at miditok's resolution); conditioning and
        special ids are dropped.

        Raises:
            TokenizerError: when the ids cannot be decoded.
        """
        body = [int(i) for i in ids if i < self.base_size]
        try:
            seq = TokSequence(ids=body, are_ids_encoded=self.remi.is_trained)
            self.remi.decode_token_ids(seq)
            self.remi.complete_sequence(seq)
            return self.remi.decode(seq)
        except Exception as exc:
            raise TokenizerError(f"could not decode {len(body)} tokens to MIDI: {exc}") from exc

    # ---- BPE --------------------------------------------------------------------------
    def train_bpe(self, vocab_size: int, files: Sequence[Path]) -> None:
        """Learn a BPE vocabulary of ``vocab_size`` miditok ids from MIDI ``files`` (miditok's
        ``tokenizer.train``); conditioning ids move up accordingly."""
        self.remi.train(vocab_size=vocab_size, model="BPE", files_paths=list(files))
        self.__init__(self.styles, self.remi)

    # ---- persistence ------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the tokenizer atomically to ``path`` (a ``.json`` file or a folder) and return the file."""
        target = Path(path)
        if target.suffix != ".json":
            target = target / TOKENIZER_FILE
        with atomic_path(target) as tmp:
            self.remi.save(tmp, additional_attributes={"notewave": {"styles": self.styles}})
        return target

    def checkpoint_files(self, extra: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
        """The ``extra_files`` callback of a checkpoint write: saves ``tokenizer.json`` into the
        temporary checkpoint folder, then runs ``extra`` (if any) on it."""

        def add_files(folder: Path) -> None:
            self.save(folder)
            if extra is not None:
                extra(folder)

        return add_files

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MidiTokenizer:
        """Load a tokenizer written by :meth:`save` (a file or a folder holding ``tokenizer.json``).

        Raises:
            TokenizerError: when the file is missing or is not a notewave tokenizer.
        """
        target = Path(path)
        if target.is_dir():
            target = target / TOKENIZER_FILE
        try:
            meta = json.loads(target.read_text(encoding="utf-8"))
            styles = meta["notewave"]["styles"]
            remi = REMI(params=target)
        except FileNotFoundError as exc:
            raise TokenizerError(f"tokenizer file not found: {target}") from exc
        except Exception as exc:
            raise TokenizerError(f"{target} is not a valid notewave tokenizer: {exc}") from exc
        return cls(styles, remi)

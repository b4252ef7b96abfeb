"""The models and options of the hybrid pipelines: cached loading of the composer and the audio LM,
checks of style and text before any work, the bar-span syntax and the melody-adherence report.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notewave.errors import ConfigError
from notewave.paths import PROJECT_ROOT
from notewave.pipelines.composer import Composer
from notewave.pipelines.hybrid_audio import melody_cosine
from notewave.pipelines.sound import SoundGenerator

AUDIO_CHOICES = ("fluidsynth", "lm", "both")  #: which audio the pipelines make
DEFAULT_SAMPLE_RATE = 32000  #: Hz, when no audio LM sets the rate (the shipped LM's rate)


def _stamp(folder: str) -> float:
    """Modification time of the folder's weights (-1 when missing), so that a new checkpoint reloads."""
    weights = Path(folder) / "model.safetensors"
    return weights.stat().st_mtime if weights.is_file() else -1.0


@functools.lru_cache(maxsize=2)
def _cached_composer(folder: str, stamp: float) -> Composer:
    return Composer.from_pretrained(folder)


@functools.lru_cache(maxsize=2)
def _cached_sound(folder: str, stamp: float) -> SoundGenerator:
    return SoundGenerator.from_pretrained(folder)


def where(path: str | os.PathLike[str]) -> str:
    """How reports name a path: relative to the project root when inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(PROJECT_ROOT)) if resolved.is_relative_to(PROJECT_ROOT) else str(path)


@dataclass
class Models:
    """The loaded composer and audio LM (``None`` when no LM audio is made) and their sources."""

    composer: Composer
    sound: SoundGenerator | None
    lm_style: str | None
    composer_source: str
    sound_source: str | None

    def describe(self, style: str | None, text: str | None, cfg_coef: float, seed: int) -> dict[str, Any]:
        """The report's conditioning, seeds and checkpoints."""
        codec = None
        if self.sound is not None:
            identity = self.sound.lm.config.codec or {}
            codec = identity.get("path") if isinstance(identity, dict) else None
        return {
            "style": style,
            "audio_lm_style": self.lm_style,
            "text": text if self.sound is not None else None,
            "cfg_coef": cfg_coef if self.sound is not None else None,
            "seeds": {"composer": seed, "audio_lm": seed if self.sound is not None else None},
            "checkpoints": {"composer": self.composer_source, "audio_lm": self.sound_source, "codec": codec},
        }


def load_models(
    checkpoint: str | os.PathLike[str] | Composer,
    audio_checkpoint: str | os.PathLike[str] | SoundGenerator | None,
    style: str | None,
    text: str | None,
) -> Models:
    """Load (once per process and checkpoint) the composer and, unless ``audio_checkpoint`` is
    ``None``, the audio LM; check ``style`` and ``text`` before any work is done.

    The style goes to the audio LM only when it was trained with it (the report's
    ``audio_lm_style``); the composer must know it.

    Raises:
        CheckpointError: a missing or broken checkpoint.
        ConditioningError: a style the composer does not know; text for an LM without text input.
    """
    if isinstance(checkpoint, Composer):
        composer, composer_source = checkpoint, "the given Composer"
    else:
        folder = str(Path(checkpoint).resolve())
        composer, composer_source = _cached_composer(folder, _stamp(folder)), where(checkpoint)
    if style is not None:
        composer.vocab.style_id(style)
    sound, sound_source, lm_style = None, None, None
    if isinstance(audio_checkpoint, SoundGenerator):
        sound, sound_source = audio_checkpoint, "the given SoundGenerator"
    elif audio_checkpoint is not None:
        folder = str(Path(audio_checkpoint).resolve())
        sound, sound_source = _cached_sound(folder, _stamp(folder)), where(audio_checkpoint)
    if sound is not None:
        from notewave.audio.lm.conditioning import build_conditions

        conditions = sound.lm.config.conditions
        lm_style = style if style is not None and style in conditions.styles else None
        build_conditions(conditions, 1, None, text, lm_style)  # a text the model cannot take fails here
    return Models(composer, sound, lm_style, composer_source, sound_source)


def parse_span(span: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """Bars ``"A-B"`` (or ``"A"``, or ``(A, B)``), 1-based and inclusive, as two ints.

    Raises:
        ConfigError: anything else.
    """
    try:
        if isinstance(span, str):
            first, _, last = span.strip().partition("-")
            return int(first), int(last or first)
        first, last = span
        return int(first), int(last)
    except (TypeError, ValueError):
        raise ConfigError(f"an infill span is FIRST-LAST bar numbers such as 9-12, got {span!r}") from None


def melody_report(
    sound: SoundGenerator | None,
    melody: np.ndarray | None,
    lm_audio: np.ndarray | None,
    fluidsynth: np.ndarray | None,
    sample_rate: int,
) -> dict[str, Any] | None:
    """Melody adherence (:func:`~notewave.pipelines.hybrid_audio.melody_cosine`) of the LM audio and,
    as a reference, of the FluidSynth render, each starting at frame 0 of ``melody`` ``[12, frames]``;
    ``None`` without an audio LM."""
    if sound is None or melody is None:
        return None
    fps = sound.frame_rate
    samples = melody.shape[1] * round(sample_rate / fps)  # the melody's span in samples
    scores = {
        name: None if wav is None else melody_cosine(wav[:, :samples], sample_rate, melody, fps)
        for name, wav in (("audio_lm", lm_audio), ("fluidsynth_reference", fluidsynth))
    }
    return {**scores, "frames": int(melody.shape[1]), "frame_rate": fps}

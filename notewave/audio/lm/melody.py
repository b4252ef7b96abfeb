"""Melody condition input of the audio LM: a MIDI file, an audio file or a chroma array -> chroma.

The chroma is float32 ``[12, frames]`` at the codec frame rate (one-hot argmax per frame);
:func:`fit_chroma` trims or pads it to the frames being generated.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from notewave.errors import ConditioningError, NotewaveError

MIDI_SUFFIXES = (".mid", ".midi")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
MelodyLike = str | os.PathLike[str] | np.ndarray | torch.Tensor


def check_chroma(chroma: Any, name: str = "the melody chroma") -> np.ndarray:
    """Return ``chroma`` as float32 ``[12, frames]``.

    Raises:
        ConditioningError: not ``[12, frames]`` with frames >= 1, NaN/inf or negative values.
    """
    if isinstance(chroma, torch.Tensor):
        chroma = chroma.detach().cpu().numpy()
    array = np.asarray(chroma)
    if (
        array.ndim != 2
        or array.shape[0] != 12
        or array.shape[1] < 1
        or not np.issubdtype(array.dtype, np.number)
    ):
        raise ConditioningError(f"{name} must be a numeric array [12, frames], got shape {array.shape}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all() or (array < 0).any():
        raise ConditioningError(f"{name} must hold finite values >= 0")
    return array


def melody_chroma(melody: MelodyLike, sample_rate: int, frame_rate: float) -> np.ndarray:
    """The melody condition float32 ``[12, frames]`` at ``frame_rate`` Hz (one-hot argmax per frame).

    Args:
        melody: a MIDI file (``.mid``/``.midi``: :func:`~notewave.bridge.chroma.chroma_from_midi`,
            summed velocities, argmax, ties to the lowest note), an audio file (WAV, FLAC, OGG, ...:
            :func:`~notewave.bridge.chroma.chroma_from_audio` at ``sample_rate`` Hz, argmax), or a
            chroma array ``[12, frames]`` (numpy or torch, used as given).
        sample_rate: analysis rate in Hz for audio files (the codec's).
        frame_rate: chroma frames per second (the codec's frame rate).

    Raises:
        ConditioningError: a missing, unreadable or unsupported file, or a chroma of the wrong shape.
    """
    if isinstance(melody, np.ndarray | torch.Tensor):
        return check_chroma(melody)
    if not isinstance(melody, str | os.PathLike):
        raise ConditioningError(
            f"a melody must be a .mid/.wav path or a chroma array [12, frames], not {type(melody).__name__}"
        )
    from notewave.bridge.chroma import chroma_from_audio, chroma_from_midi

    path = Path(melody)
    if not path.is_file():
        raise ConditioningError(f"melody file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in MIDI_SUFFIXES:
            chroma = chroma_from_midi(path, frame_rate=frame_rate, mode="velocity", argmax=True)
        elif suffix in AUDIO_SUFFIXES:
            chroma = chroma_from_audio(path, sample_rate, frame_rate=frame_rate, argmax=True)
        else:
            raise ConditioningError(
                f"melody file {path} has an unknown type {suffix!r}; give one of "
                f"{', '.join(MIDI_SUFFIXES + AUDIO_SUFFIXES)}"
            )
    except ConditioningError:
        raise
    except NotewaveError as exc:
        raise ConditioningError(f"cannot read the melody {path}: {exc}") from exc
    return check_chroma(chroma, f"the chroma of {path}")


def fit_chroma(chroma: np.ndarray, frames: int, warn: bool = True) -> np.ndarray:
    """Trim (with a warning) or zero-pad (silence) a chroma ``[12, F]`` to exactly ``frames`` frames.

    A melody longer than the requested duration is trimmed to it (a ``UserWarning`` says by how
    much); a shorter one is followed by silence, i.e. no melody constraint.
    """
    if chroma.shape[1] > frames:
        if warn:
            warnings.warn(
                f"the melody has {chroma.shape[1]} frames but only {frames} are generated; "
                f"it is trimmed to the requested duration",
                UserWarning,
                stacklevel=4,
            )
        return chroma[:, :frames]
    return np.pad(chroma, ((0, 0), (0, frames - chroma.shape[1])))

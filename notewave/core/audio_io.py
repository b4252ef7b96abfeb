"""Reading, checking and resampling audio: soundfile for I/O, soxr for resampling.

Every waveform in notewave is float32 ``[channels, samples]`` in [-1, 1] (the codec and
the LM add a batch axis: ``[batch, channels, samples]``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from notewave.errors import AudioError

AudioLike = str | os.PathLike[str] | np.ndarray


def check_waveform(wav: np.ndarray, name: str = "the waveform") -> np.ndarray:
    """Return ``wav`` as float32 ``[channels, samples]`` (1-D input becomes one channel).

    Raises:
        AudioError: more than 2 dimensions, no samples, or NaN/inf values.
    """
    wav = np.asarray(wav)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2:
        raise AudioError(f"{name} must have shape [channels, samples], got {wav.shape}")
    if wav.shape[-1] == 0 or wav.shape[0] == 0:
        raise AudioError(f"{name} is empty (shape {wav.shape})")
    if not np.issubdtype(wav.dtype, np.number):
        raise AudioError(f"{name} has non-numeric dtype {wav.dtype}")
    if not np.isfinite(wav).all():
        raise AudioError(f"{name} contains NaN or infinite samples")
    return wav.astype(np.float32, copy=False)


def resample(wav: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample float32 ``[channels, samples]`` from ``source_rate`` to ``target_rate`` Hz (soxr, HQ).

    Raises:
        AudioError: for a non-positive rate.
    """
    if source_rate <= 0 or target_rate <= 0:
        raise AudioError(f"sample rates must be positive, got {source_rate} -> {target_rate}")
    if source_rate == target_rate:
        return wav
    import soxr

    out = soxr.resample(np.ascontiguousarray(wav.T), source_rate, target_rate, quality="HQ")
    return np.ascontiguousarray(np.atleast_2d(out.T if out.ndim == 2 else out[None]), dtype=np.float32)


def load_audio(
    audio: AudioLike,
    sample_rate: int | None = None,
    mono: bool = True,
    source_rate: int | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Load audio (a file soundfile can read: WAV, FLAC, OGG, ...; or an array) as float32.

    Args:
        audio: file path, or an array ``[channels, samples]`` / ``[samples]``.
        sample_rate: resample to this rate in Hz (``None``: keep the file's rate).
        mono: average the channels into one (any channel count is accepted).
        source_rate: the rate of an array input (required for arrays).
        offset: seconds to skip at the start (files only).
        duration: seconds to read (files only; ``None``: to the end).

    Returns:
        ``(wav, rate)``: float32 ``[channels, samples]`` (1 channel when ``mono``) and its rate in Hz.

    Raises:
        AudioError: unreadable or missing file, empty audio, NaN/inf samples, array without a rate.
    """
    if isinstance(audio, np.ndarray):
        if source_rate is None:
            raise AudioError("an audio array needs its sample rate (source_rate)")
        wav, rate, name = audio, int(source_rate), "the audio array"
    else:
        import soundfile as sf

        path = Path(audio)
        name = str(path)
        if not path.is_file():
            raise AudioError(f"audio file not found: {path}")
        try:
            info = sf.info(str(path))
            start = int(offset * info.samplerate)
            frames = -1 if duration is None else int(duration * info.samplerate)
            data, rate = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
        except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
            raise AudioError(f"cannot read audio file {path}: {exc}") from exc
        wav = data.T
    wav = check_waveform(wav, name)
    if mono and wav.shape[0] > 1:
        wav = wav.mean(axis=0, keepdims=True)
    if sample_rate is not None and sample_rate != rate:
        wav = resample(wav, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(wav, dtype=np.float32), int(rate)

"""Reading, checking and resampling audio: soundfile for I/O, soxr for resampling.

Every waveform in notewave is float32 ``[channels, samples]`` in [-1, 1] (the codec and
the LM add a batch axis: ``[batch, channels, samples]``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from notewave.errors import AudioError

AudioLike = str | os.PathLike[str] | np.ndarray
BLOCK_FRAMES = 1 << 16  #: frames per block when reading files (about 1.5 s at 44.1 kHz)


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

    Channels are resampled one at a time into one float32 output (no transposed copies);
    the output has ``round(samples * target_rate / source_rate)`` samples.

    Raises:
        AudioError: for a non-positive rate.
    """
    if source_rate <= 0 or target_rate <= 0:
        raise AudioError(f"sample rates must be positive, got {source_rate} -> {target_rate}")
    if source_rate == target_rate:
        return wav
    import soxr

    wav = np.atleast_2d(wav)
    out = np.empty(0, dtype=np.float32)
    for channel, row in enumerate(wav):
        res = soxr.resample(
            np.ascontiguousarray(row, dtype=np.float32), source_rate, target_rate, quality="HQ"
        )
        if wav.shape[0] == 1:
            return res.astype(np.float32, copy=False)[None]
        if channel == 0:
            out = np.empty((wav.shape[0], res.shape[0]), dtype=np.float32)
        out[channel] = res
    return out


class _Buffer:
    """float32 ``[channels, samples]`` filled block by block; grows by 25 % past its first estimate."""

    def __init__(self, channels: int, estimate: int):
        self.data = np.empty((channels, max(1, estimate)), dtype=np.float32)
        self.size = 0

    def append(self, block: np.ndarray) -> None:  # block: [samples, channels]
        end = self.size + block.shape[0]
        if end > self.data.shape[1]:
            grown = np.empty((self.data.shape[0], max(end, self.data.shape[1] * 5 // 4)), dtype=np.float32)
            grown[:, : self.size] = self.data[:, : self.size]
            self.data = grown
        self.data[:, self.size : end] = block.T
        self.size = end

    def result(self) -> np.ndarray:
        return np.ascontiguousarray(self.data[:, : self.size])


def _read_file(
    path: Path, sample_rate: int | None, mono: bool, offset: float, duration: float | None
) -> tuple[np.ndarray, int]:
    """Stream ``path`` in blocks of :data:`BLOCK_FRAMES`: check, downmix and resample each block into
    one float32 output, so that no full-length copy of the file's channels or rate is ever held.

    Raises:
        AudioError: unreadable file, NaN/inf samples (the checks of :func:`check_waveform`).
    """
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as handle:
            rate, channels = int(handle.samplerate), int(handle.channels)
            start = min(max(0, int(offset * rate)), handle.frames)
            count = (
                handle.frames - start
                if duration is None
                else max(0, min(int(duration * rate), handle.frames - start))
            )
            handle.seek(start)
            out_channels = 1 if mono else channels
            target = rate if sample_rate is None else int(sample_rate)
            if target <= 0:
                raise AudioError(f"sample rates must be positive, got {rate} -> {target}")
            stream = None
            if target != rate:
                import soxr

                stream = soxr.ResampleStream(rate, target, out_channels, dtype="float32", quality="HQ")
            buffer = _Buffer(out_channels, round(count * target / rate))
            left = count
            while left > 0:
                block = handle.read(min(BLOCK_FRAMES, left), dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                left -= block.shape[0]
                if not np.isfinite(block).all():
                    raise AudioError(f"{path} contains NaN or infinite samples")
                if mono and channels > 1:
                    block = block.mean(axis=1, keepdims=True)
                buffer.append(block if stream is None else _stream_chunk(stream, block, left <= 0))
            if stream is not None and left > 0:  # the file ended early: flush the resampler
                buffer.append(_stream_chunk(stream, np.zeros((0, out_channels), np.float32), True))
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise AudioError(f"cannot read audio file {path}: {exc}") from exc
    if count - left == 0:
        raise AudioError(f"{path} is empty" + (f" after {offset} s" if offset else ""))
    if buffer.size == 0:
        raise AudioError(f"{path} is too short: {count - left} samples at {rate} Hz give none at {target} Hz")
    return buffer.result(), target


def _stream_chunk(stream: Any, block: np.ndarray, last: bool) -> np.ndarray:
    """Resampled ``[samples, channels]`` of one input block (1-channel blocks go through as 1-D)."""
    out = stream.resample_chunk(block[:, 0] if block.shape[1] == 1 else block, last=last)
    return out[:, None] if out.ndim == 1 else out


def load_audio(
    audio: AudioLike,
    sample_rate: int | None = None,
    mono: bool = True,
    source_rate: int | None = None,
    offset: float = 0.0,
    duration: float | None = None,
    name: str = "the audio array",
) -> tuple[np.ndarray, int]:
    """Load audio (a file soundfile can read: WAV, FLAC, OGG, ...; or an array) as float32.

    Files are read, checked, downmixed and resampled in blocks of :data:`BLOCK_FRAMES` frames
    (soxr streaming gives the same samples as a one-shot resample), so the peak memory is
    about the float32 output plus a few blocks, whatever the file's channels and rate.

    Args:
        audio: file path, or an array ``[channels, samples]`` / ``[samples]``.
        sample_rate: resample to this rate in Hz (``None``: keep the file's rate).
        mono: average the channels into one (any channel count is accepted).
        source_rate: the rate of an array input (required for arrays).
        offset: seconds to skip at the start (files only).
        duration: seconds to read (files only; ``None``: to the end).
        name: what error messages call an array input (e.g. the file it was read from).

    Returns:
        ``(wav, rate)``: float32 ``[channels, samples]`` (1 channel when ``mono``) and its rate in Hz.

    Raises:
        AudioError: unreadable or missing file, empty audio, NaN/inf samples, array without a rate.
    """
    if not isinstance(audio, np.ndarray):
        path = Path(audio)
        if not path.is_file():
            raise AudioError(f"audio file not found: {path}")
        return _read_file(path, sample_rate, mono, offset, duration)
    if source_rate is None:
        raise AudioError("an audio array needs its sample rate (source_rate)")
    wav, rate = check_waveform(audio, name), int(source_rate)
    if mono and wav.shape[0] > 1:
        wav = wav.mean(axis=0, keepdims=True)
    if sample_rate is not None and sample_rate != rate:
        count = wav.shape[-1]
        wav = resample(wav, rate, sample_rate)
        if wav.shape[-1] == 0:
            raise AudioError(
                f"{name} is too short: {count} samples at {rate} Hz give none at {sample_rate} Hz"
            )
        rate = sample_rate
    return np.ascontiguousarray(wav, dtype=np.float32), int(rate)

"""Audio helpers of the hybrid pipelines: checking a recording, ticks to seconds, the equal-power
crossfade at a seam, level matching and the melody-adherence measure (chroma cosine).

Every waveform is float32 ``[channels, samples]`` in [-1, 1] (see :mod:`notewave.core.audio_io`).
"""

from __future__ import annotations

import math

import numpy as np
from symusic import Score

from notewave.bridge.chroma import chroma_from_audio, chroma_from_midi, chroma_similarity
from notewave.errors import AudioError, ConfigError

MIN_RECORDING_SECONDS = 1.0  #: shortest recording ``continue_audio`` accepts, in seconds
SILENCE_PEAK = 1e-4  #: -80 dBFS: a recording whose peak is below this is silent (as the transcriber)
DEFAULT_MSPQ = 500_000  #: microseconds per quarter before the first tempo: 120 BPM, the MIDI default


def check_recording(wav: np.ndarray, sample_rate: int, name: str) -> None:
    """Refuse a recording too short or too quiet to continue.

    Args:
        wav: float32 ``[channels, samples]``; sample_rate: its rate in Hz; name: what errors call it.

    Raises:
        AudioError: shorter than :data:`MIN_RECORDING_SECONDS`, or silent (peak below
            :data:`SILENCE_PEAK`, -80 dBFS).
    """
    seconds = wav.shape[-1] / sample_rate
    if seconds < MIN_RECORDING_SECONDS:
        raise AudioError(
            f"{name} is {seconds:.2f} s long; give a recording of at least {MIN_RECORDING_SECONDS:g} s"
        )
    peak = float(np.abs(wav).max())
    if peak < SILENCE_PEAK:
        level = "every sample is 0" if peak == 0 else f"peak {20 * math.log10(peak):.0f} dBFS"
        raise AudioError(f"{name} is silent ({level}; silence is below -80 dBFS): nothing to continue")


def tick_seconds(score: Score, ticks: int | float | np.ndarray) -> np.ndarray | float:
    """Seconds from tick 0 of ``ticks`` of a tick-based ``score``, through its tempo map.

    Before the first tempo event the MIDI default of 120 BPM holds; each tempo holds until the
    next. Returns a float for a scalar input, else float64 of the input's shape.
    """
    tpq = score.ticks_per_quarter
    changes = sorted((int(t.time), int(t.mspq)) for t in score.tempos)
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0, DEFAULT_MSPQ))
    starts = np.array([c[0] for c in changes], dtype=np.float64)
    rates = np.array([c[1] for c in changes], dtype=np.float64) / (1e6 * tpq)  # seconds per tick
    offsets = np.concatenate([[0.0], np.cumsum(np.diff(starts) * rates[:-1])])  # seconds at each change
    t = np.asarray(ticks, dtype=np.float64)
    index = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
    out = offsets[index] + (t - starts[index]) * rates[index]
    return float(out) if out.ndim == 0 else out


def join_at_seam(before: np.ndarray, after: np.ndarray, seam: int, fade: int) -> np.ndarray:
    """Play ``before`` up to ``seam``, then ``after``, with an equal-power crossfade ending at ``seam``.

    Both inputs are ``[channels, samples]`` on one timeline (sample 0 of each is time 0); over the
    ``fade`` samples before the seam ``before`` falls with ``cos`` and ``after`` rises with ``sin``
    of ``pi / 2 * x`` (x from 0 to 1), so the summed power of two uncorrelated signals stays constant
    (the equal-power law; a linear fade dips by 3 dB in the middle). An input shorter than needed
    is taken as silence past its end.

    Args:
        before, after: float32 ``[channels, samples]`` (same channel count).
        seam: sample where ``after`` takes over (>= 0).
        fade: crossfade length in samples (>= 0); shortened to ``seam`` when longer.

    Returns:
        float32 ``[channels, max(seam, after.shape[-1])]``.

    Raises:
        ConfigError: a negative ``seam`` or ``fade``, or different channel counts.
    """
    if seam < 0 or fade < 0 or before.shape[0] != after.shape[0]:
        raise ConfigError(
            f"need seam >= 0, fade >= 0 and one channel count; got seam {seam}, fade {fade}, "
            f"shapes {before.shape} and {after.shape}"
        )
    fade = min(fade, seam)
    total = max(seam, after.shape[-1])
    first = np.zeros((before.shape[0], total), dtype=np.float32)
    second = np.zeros_like(first)
    first[:, : min(seam, before.shape[-1])] = before[:, :seam]
    second[:, seam - fade : after.shape[-1]] = after[:, seam - fade : total]
    x = (np.arange(fade, dtype=np.float64) + 0.5) / max(fade, 1)
    gain_out, gain_in = np.ones(total), np.zeros(total)
    gain_out[seam - fade : seam], gain_in[seam - fade : seam] = np.cos(np.pi / 2 * x), np.sin(np.pi / 2 * x)
    gain_out[seam:], gain_in[seam:] = 0.0, 1.0
    return (first * gain_out + second * gain_in).astype(np.float32)


def match_level(wav: np.ndarray, reference: np.ndarray, max_peak: float = 0.99) -> np.ndarray:
    """``wav`` scaled to the RMS level of ``reference`` (then lowered if its peak would pass
    ``max_peak``), so that a render joins a recording at the recording's loudness. A silent
    ``wav`` is returned as is."""
    rms, target = float(np.sqrt(np.mean(np.square(wav)))), float(np.sqrt(np.mean(np.square(reference))))
    if rms == 0.0:
        return wav
    gain = target / rms
    peak = float(np.abs(wav).max()) * gain
    if peak > max_peak:
        gain *= max_peak / peak
    return (wav * gain).astype(np.float32)


def melody_cosine(wav: np.ndarray, sample_rate: int, melody: np.ndarray, frame_rate: float) -> float | None:
    """Melody adherence: mean frame-wise cosine between the argmax chroma of ``wav`` and ``melody``.

    The measure of ``bench/melody_adherence.py`` and MusicGen's melody evaluation (Copet et al.
    2023, Table 2): :func:`~notewave.bridge.chroma.chroma_from_audio` with ``argmax=True`` at
    ``frame_rate`` against the one-hot melody condition, compared by
    :func:`~notewave.bridge.chroma.chroma_similarity` (frames silent in either are skipped).

    Args:
        wav: float32 ``[channels, samples]`` at ``sample_rate`` Hz; frame ``t`` is ``[t, t + 1) /
            frame_rate`` s of it.
        melody: float32 ``[12, frames]`` on the same timeline (the longer one is trimmed).

    Returns:
        The cosine in [0, 1] (one-hot chromas), or ``None`` when no frame has sound in both.
    """
    chroma = chroma_from_audio(wav, sample_rate, frame_rate=frame_rate, argmax=True)
    mean, _ = chroma_similarity(chroma, melody)
    return None if math.isnan(mean) else round(mean, 4)


def lm_window(new_span: tuple[float, float], end: float, seconds: float | None) -> tuple[float, float]:
    """Seconds ``(start, stop)`` of a composition the audio LM plays: the new bars ``new_span``, or
    ``seconds`` from their start, moved earlier when that would pass the composition's ``end``."""
    if seconds is None:
        return new_span
    start = max(0.0, min(new_span[0], end - seconds))
    return start, min(end, start + seconds)


def melody_window(
    score: Score, sample_rate: int, frame_rate: float, start: float, seconds: float
) -> tuple[np.ndarray, int, int]:
    """The audio LM's melody condition for ``seconds`` of ``score`` from ``start`` seconds.

    The one-hot argmax chroma of the notes (summed velocities, ties to the lowest note), as
    ``notewave generate-audio`` takes a MIDI melody; ``start`` is moved down to a frame edge, so
    that chroma frame ``i`` is output frame ``i``.

    Args:
        score: tick-based score; sample_rate, frame_rate: the LM's (Hz; a whole hop in samples).

    Returns:
        ``(chroma, first, samples)``: float32 ``[12, ceil(samples / hop)]``, the first sample of the
        window and its length in samples (``round((start + seconds) * sample_rate) - first``).
    """
    hop = round(sample_rate / frame_rate)
    first_frame = int(math.floor(start * frame_rate + 1e-9))
    samples = round((start + seconds) * sample_rate) - first_frame * hop
    frames = -(-samples // hop)
    duration = (first_frame * hop + samples) / sample_rate
    full = chroma_from_midi(score, frame_rate=frame_rate, duration=duration, argmax=True)
    return full[:, first_frame : first_frame + frames], first_frame * hop, samples

"""Audio -> notes: polyphonic transcription with our Onsets-and-Frames-style network, and a
monophonic pYIN path for hummed or sung sketches.

Output format: a symusic ``Score`` with 480 ticks per quarter note, one tempo of 120 BPM and a
4/4 time signature at tick 0, so one second is exactly 960 ticks (tick = round(seconds * 960)),
and one track named ``Transcription`` with General MIDI program 0 (piano). Pitches are MIDI
21..108 (polyphonic) or 36..96 (monophonic, C2..C7).

Inputs: a path soundfile can read, or an array ``[channels, samples]`` / ``[samples]`` with its
``sample_rate``; any channel count is averaged to mono, any rate resampled (soxr). Errors:
:class:`~notewave.errors.AudioError` for unreadable/missing files, empty audio and NaN/inf
samples. Silent audio (peak below 1e-4, -80 dBFS) is not an error: it gives a Score with the
tempo, time signature and the empty track but no notes, and so does audio in which no note is
found; both give a one-line warning saying why (silence, or the level and the thresholds to
lower). ``transcribe_file`` still writes that MIDI file: its one track chunk keeps the tempo, the
time signature, the track name and program, but symusic (and so ``notewave render``, which then
refuses the file) reads a track without notes as no track at all.

Note decoding (Hawthorne et al. 2018, "Onsets and Frames", ISMIR): a note of key ``k`` starts
at the peak frame of each run of onset probabilities >= ``onset_threshold`` and lasts while the
frame probability stays >= ``frame_threshold`` (at least one frame, and never past the next
onset of the same key); its velocity is the velocity head's output at the onset frame.

Monophonic path: ``librosa.pyin`` (Mauch & Dixon 2014) from C2 to C7 at 16 kHz, hop 256 samples
(16 ms); the rounded MIDI pitch of voiced frames is median-filtered over 5 frames, runs of one
pitch shorter than 60 ms are dropped, runs of one pitch separated only by such voiced blips are
merged, edge frames more than 15 dB below the note's peak RMS (32 ms window) are trimmed, and the
velocity is ``127 * (1 + dB / 60)`` of that peak level in dBFS, clipped to 1..127.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from symusic import Score

from notewave.bridge.transcription.model import Transcriber
from notewave.bridge.transcription.notes import (
    NoteEvent,
    decode_notes,
    notes_to_score,
)
from notewave.core.audio_io import AudioLike, load_audio
from notewave.errors import AudioError, CheckpointError
from notewave.paths import DEFAULT_TRANSCRIBER_CHECKPOINT

SILENCE_PEAK = 1e-4  # -80 dBFS: quieter audio is "silent" and has no notes
MONO_SAMPLE_RATE = 16000
MONO_HOP = 256  # 16 ms
PYIN_RESOLUTION = 0.2  # pitch bins of 1/5 semitone (librosa's default 0.1 makes its Viterbi 4x slower)
MONO_FMIN_MIDI, MONO_FMAX_MIDI = 36, 96  # C2, C7
MIN_NOTE_SECONDS = 0.06


def prepare_audio(
    audio: AudioLike, sample_rate: int | None, target_rate: int | None, name: str = "the audio array"
) -> tuple[np.ndarray, int]:
    """Load a file or array as float32 mono ``[samples]`` at ``target_rate`` Hz (``None``: keep the rate).

    A 2-D array is ``[channels, samples]``; one with more than 16 rows and at most 16 columns is
    taken as ``[samples, channels]`` (soundfile's layout) and transposed; ``name`` is what errors
    call an array. Returns ``(wav, rate)``.

    Raises:
        AudioError: unreadable/missing file, array without ``sample_rate``, empty or NaN/inf audio.
    """
    if isinstance(audio, np.ndarray) and audio.ndim == 2 and audio.shape[0] > 16 >= audio.shape[1]:
        audio = audio.T
    wav, rate = load_audio(audio, sample_rate=target_rate, mono=True, source_rate=sample_rate, name=name)
    return wav[0], rate


# ---- polyphonic -------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _cached_model(path: str, stamp: float) -> Transcriber:
    return Transcriber.from_pretrained(path)


def load_transcriber(checkpoint: str | os.PathLike[str] | None = None) -> Transcriber:
    """The :class:`~notewave.bridge.transcription.model.Transcriber` in ``checkpoint`` (default: the shipped
    ``data/checkpoints/transcriber``), cached per process until its weights file changes.

    Raises:
        CheckpointError: missing, truncated or mismatching checkpoint.
    """
    folder = Path(checkpoint) if checkpoint is not None else DEFAULT_TRANSCRIBER_CHECKPOINT
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(
            f"no transcriber checkpoint in {folder} (model.safetensors missing); train one with "
            "`notewave train transcriber --midi data/jsb --out runs/transcriber` or pass checkpoint="
        )
    return _cached_model(str(folder.resolve()), weights.stat().st_mtime)


def transcribe_with_model(
    model: Any,
    wav: Any,
    sample_rate: int | None,
    onset_threshold: float = 0.5,
    frame_threshold: float = 0.5,
    name: str = "the audio array",
) -> Score:
    """Polyphonic transcription of ``wav`` (path or array, see :func:`prepare_audio`; ``name``: what
    errors call an array) with ``model``."""
    cfg = model.config
    mono, _ = prepare_audio(wav, sample_rate, cfg.sample_rate, name)
    if np.abs(mono).max() < SILENCE_PEAK:
        return notes_to_score([])
    act, fps = model.activations(mono), cfg.frames_per_second
    notes = decode_notes(act["onset"], act["frame"], act["velocity"], onset_threshold, frame_threshold, fps)
    return notes_to_score(notes)


# ---- monophonic -------------------------------------------------------------------------
def segment_pitch_track(
    f0_hz: np.ndarray,
    voiced: np.ndarray,
    rms: np.ndarray,
    frames_per_second: float,
    min_seconds: float = MIN_NOTE_SECONDS,
) -> list[NoteEvent]:
    """Group a frame-wise pitch track ``f0_hz`` ``[frames]`` (Hz, NaN when unvoiced) into notes.

    Args:
        voiced: bool ``[frames]`` voicing decisions; rms: ``[frames]`` RMS amplitude (linear, short window).
        frames_per_second: pitch-track frame rate (frame ``t`` centred at ``t / frames_per_second`` s).
        min_seconds: shortest note kept, in seconds.
    """
    from scipy.ndimage import median_filter

    f0 = np.asarray(f0_hz, dtype=np.float64)
    ok = np.asarray(voiced, bool) & np.isfinite(f0) & (f0 > 0)
    pitch = np.full(len(f0), -1, dtype=np.int64)
    pitch[ok] = np.rint(12 * np.log2(f0[ok] / 440.0) + 69).astype(np.int64)
    pitch = median_filter(pitch, size=5, mode="nearest") if len(pitch) else pitch
    change = np.flatnonzero(np.diff(pitch)) + 1
    bounds = np.concatenate([[0], change, [len(pitch)]]).astype(int)
    min_frames = max(1, int(np.ceil(min_seconds * frames_per_second - 1e-9)))
    merged: list[tuple[int, int, int]] = []
    for s, e in zip(bounds[:-1], bounds[1:]):
        if pitch[s] < 0 or e - s < min_frames:
            continue
        p = int(pitch[s])  # join same-pitch runs separated only by short voiced blips
        if merged and merged[-1][2] == p and (pitch[merged[-1][1] : s] >= 0).all():
            merged[-1] = (merged[-1][0], e, p)
        else:
            merged.append((s, e, p))
    fps, notes = frames_per_second, []
    for s, e, p in merged:  # trim edge frames 15 dB below the peak; velocity 127 * (1 + dB / 60)
        peak = max(float(rms[s:e].max()), 1e-10)
        loud = s + np.flatnonzero(rms[s:e] >= peak * 10 ** (-15 / 20))
        vel = int(np.clip(round(127 * (1 + np.log10(peak) / 3)), 1, 127))
        notes.append(NoteEvent(loud[0] / fps, (loud[-1] + 1) / fps, p, vel))
    return notes


def transcribe_mono(audio: AudioLike, sample_rate: int | None = None) -> Score:
    """Monophonic transcription (hummed, sung or whistled melody) with pYIN; see the module docstring."""
    import librosa

    wav, _ = prepare_audio(audio, sample_rate, MONO_SAMPLE_RATE)
    if np.abs(wav).max() < SILENCE_PEAK or len(wav) < 1024:
        return notes_to_score([])
    fmin, fmax = (float(librosa.midi_to_hz(m)) for m in (MONO_FMIN_MIDI, MONO_FMAX_MIDI))
    opts = dict(sr=MONO_SAMPLE_RATE, frame_length=1024, hop_length=MONO_HOP)
    f0, voiced, _ = librosa.pyin(wav, fmin=fmin, fmax=fmax, resolution=PYIN_RESOLUTION, **opts)
    rms = librosa.feature.rms(y=wav, frame_length=512, hop_length=MONO_HOP)[0]  # 32 ms: sharper edges
    n = min(len(f0), len(rms))
    return notes_to_score(segment_pitch_track(f0[:n], voiced[:n], rms[:n], MONO_SAMPLE_RATE / MONO_HOP))


# ---- public API -------------------------------------------------------------------------
def _no_notes(
    audio: AudioLike, wav: np.ndarray, rate: int, mono: bool, thresholds: tuple[float, float]
) -> str:
    """Why no note was found in ``wav`` (mono float32 at ``rate`` Hz), as one line naming ``audio``."""
    name = str(audio) if isinstance(audio, str | os.PathLike) else "the given audio"
    peak = float(np.abs(wav).max())
    if peak < SILENCE_PEAK:
        level = "every sample is 0" if peak == 0 else f"peak {20 * np.log10(peak):.0f} dBFS"
        return f"{name}: no notes: the audio is silent ({level}; silence is below -80 dBFS)"
    found = (
        f"{name}: no notes found in {len(wav) / rate:.1f} s of audio (peak {20 * np.log10(peak):.0f} dBFS)"
    )
    if mono:
        return f"{found}; pYIN heard no steady pitch from C2 to C7 lasting {MIN_NOTE_SECONDS * 1000:.0f} ms"
    onset, frame = thresholds
    louder = "make it louder (the network misses quiet notes) or " if peak < 0.1 else ""
    return (
        f"{found}; if it holds music, {louder}lower the thresholds (onset {onset:g}, frame {frame:g}; "
        "--onset-threshold, --frame-threshold)"
    )


def _transcribe(
    audio: AudioLike,
    sample_rate: int | None,
    checkpoint: str | os.PathLike[str] | None,
    mono: bool,
    onset_threshold: float,
    frame_threshold: float,
) -> tuple[Score, str | None]:
    """:func:`transcribe` without its warning: the Score, and the reason it has no notes (else None)."""
    wav, rate = prepare_audio(audio, sample_rate, None)  # bad audio fails before the model loads
    if mono:
        score = transcribe_mono(wav, rate)
    elif np.abs(wav).max() < SILENCE_PEAK:
        score = notes_to_score([])
    else:
        model = load_transcriber(checkpoint)
        name = str(audio) if isinstance(audio, str | os.PathLike) else "the audio array"
        score = transcribe_with_model(model, wav, rate, onset_threshold, frame_threshold, name)
    if score.note_num() > 0:
        return score, None
    return score, _no_notes(audio, wav, rate, mono, (onset_threshold, frame_threshold))


def transcribe(
    audio: AudioLike,
    sample_rate: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    mono: bool = False,
    onset_threshold: float = 0.5,
    frame_threshold: float = 0.5,
) -> Score:
    """Transcribe audio to notes.

    Args:
        audio: a path soundfile can read (WAV, FLAC, OGG, ...) or a float array
            ``[channels, samples]`` / ``[samples]`` in [-1, 1].
        sample_rate: the array's rate in Hz (required for arrays; a file's own rate is used).
        checkpoint: transcriber checkpoint folder (default ``data/checkpoints/transcriber``).
        mono: use the monophonic pYIN path (one voice, no network) instead of the network.
        onset_threshold, frame_threshold: decoding thresholds in (0, 1) (polyphonic path).

    Returns:
        A one-track ``Score`` at 120 BPM (960 ticks per second) in 4/4, program 0. When no note
        is found (silence: peak below -80 dBFS, or nothing the decoder accepts) the track is empty
        and a one-line ``UserWarning`` names the audio and says why.

    Raises:
        AudioError: unreadable/missing file, array without rate, empty audio, NaN/inf samples.
        CheckpointError: the checkpoint is missing or broken (polyphonic path).
        ConfigError: thresholds outside (0, 1) (polyphonic path, audio not silent).
    """
    score, why = _transcribe(audio, sample_rate, checkpoint, mono, onset_threshold, frame_threshold)
    if why is not None:
        warnings.warn(why, stacklevel=2)
    return score


def transcribe_file(
    in_wav: str | os.PathLike[str],
    out_mid: str | os.PathLike[str],
    mono: bool = False,
    tokens_path: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    onset_threshold: float = 0.5,
    frame_threshold: float = 0.5,
) -> Path:
    """Transcribe an audio file and write the MIDI file ``out_mid`` atomically; returns its path.

    When no note is found the file is written all the same (tempo, time signature and the empty
    track, which symusic and ``notewave render`` read as no track) and a one-line ``UserWarning``
    says why (see :func:`transcribe`) and that the MIDI file has no notes.

    With ``tokens_path`` also writes (atomically) a JSON object ``{"source", "midi", "num_notes",
    "ids", "tokens"}`` holding the multitrack token ids of the notes
    (:func:`notewave.symbolic.layout.piece_ids`, no style) and their names; not written when no
    note was found.

    Raises:
        AudioError, CheckpointError, ConfigError: see :func:`transcribe`.
    """
    from notewave.core.io import atomic_open
    from notewave.core.midi import save_score

    if not Path(in_wav).is_file():
        raise AudioError(f"audio file not found: {in_wav}")
    score, why = _transcribe(in_wav, None, checkpoint, mono, onset_threshold, frame_threshold)
    out = save_score(score, out_mid)
    if why is not None:
        warnings.warn(f"{why}; wrote {out} without notes (`notewave render` will refuse it)", stacklevel=2)
    if tokens_path is not None and score.note_num() > 0:
        from notewave.symbolic.layout import piece_ids
        from notewave.symbolic.piece import piece_from_score
        from notewave.symbolic.vocab import Vocab

        vocab = Vocab()
        ids = piece_ids(vocab, piece_from_score(score, str(out)))
        record = {"source": str(in_wav), "midi": str(out), "num_notes": score.note_num(), "ids": ids}
        record["tokens"] = [vocab.name(i) for i in ids]
        with atomic_open(tokens_path) as handle:
            json.dump(record, handle)
    return out

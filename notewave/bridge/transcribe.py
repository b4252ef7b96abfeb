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
tempo and the empty track but no notes (``transcribe_file`` writes that as a valid MIDI file).

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

import argparse
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from symusic import Note, Score, Tempo, TimeSignature, Track

from notewave.bridge.transcriber_model import Transcriber
from notewave.core.audio_io import AudioLike, load_audio
from notewave.errors import AudioError, CheckpointError, ConfigError
from notewave.paths import DATA_DIR

DEFAULT_TRANSCRIBER_CHECKPOINT = DATA_DIR / "checkpoints" / "transcriber"
TICKS_PER_QUARTER = 480
TEMPO_BPM = 120.0
TICKS_PER_SECOND = TICKS_PER_QUARTER * TEMPO_BPM / 60.0  # 960
TRACK_NAME = "Transcription"
PROGRAM = 0
SILENCE_PEAK = 1e-4  # -80 dBFS: quieter audio is "silent" and has no notes
MONO_SAMPLE_RATE = 16000
MONO_HOP = 256  # 16 ms
PYIN_RESOLUTION = 0.2  # pitch bins of 1/5 semitone (librosa's default 0.1 makes its Viterbi 4x slower)
MONO_FMIN_MIDI, MONO_FMAX_MIDI = 36, 96  # C2, C7
MIN_NOTE_SECONDS = 0.06
DEFAULT_VELOCITY = 80


@dataclass(frozen=True)
class NoteEvent:
    """One decoded note: ``start``/``end`` in seconds, MIDI ``pitch`` and ``velocity`` (1..127)."""

    start: float
    end: float
    pitch: int
    velocity: int


# ---- decoding ---------------------------------------------------------------------------
def _refine(curve: np.ndarray, t: int) -> float:
    """Sub-frame peak position of ``curve`` near ``t`` by a parabola through 3 points (|shift| <= 0.5)."""
    if t <= 0 or t >= len(curve) - 1:
        return float(t)
    a, b, c = float(curve[t - 1]), float(curve[t]), float(curve[t + 1])
    denom = a - 2 * b + c
    return t + (float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5)) if denom < 0 else 0.0)


def decode_notes(
    onset: np.ndarray,
    frame: np.ndarray,
    velocity: np.ndarray | None = None,
    onset_threshold: float = 0.5,
    frame_threshold: float = 0.5,
    frames_per_second: float = 31.25,
    min_midi: int = 21,
) -> list[NoteEvent]:
    """Turn onset/frame/velocity activations into notes (see the module docstring).

    Args:
        onset, frame: probabilities ``[frames, keys]`` (key ``k`` is MIDI ``min_midi + k``).
        velocity: ``[frames, keys]`` velocity / 127 in [0, 1], or ``None`` (velocity 80).
        onset_threshold, frame_threshold: probability thresholds in (0, 1).
        frames_per_second: frame rate; frame ``t`` is centred at ``t / frames_per_second`` seconds.

    Returns:
        Notes sorted by start time then pitch; ``end - start >= 1 / frames_per_second``.

    Raises:
        ConfigError: mismatching shapes or thresholds outside (0, 1).
    """
    onset, frame = np.asarray(onset, dtype=np.float32), np.asarray(frame, dtype=np.float32)
    shapes = {onset.shape, frame.shape} | ({np.shape(velocity)} if velocity is not None else set())
    if onset.ndim != 2 or len(shapes) != 1:
        raise ConfigError(f"activations must share one [frames, keys] shape, got {sorted(shapes)}")
    if not (0 < onset_threshold < 1 and 0 < frame_threshold < 1):
        raise ConfigError(f"thresholds must lie in (0, 1), got {onset_threshold}, {frame_threshold}")
    n_frames, notes = onset.shape[0], []
    vel_prob = np.full(onset.shape, DEFAULT_VELOCITY / 127) if velocity is None else np.asarray(velocity)
    pad = np.zeros((1, onset.shape[1]), bool)
    edges = np.diff(np.vstack([pad, onset >= onset_threshold, pad]).astype(np.int8), axis=0)
    for key in np.flatnonzero((edges == 1).any(axis=0)):
        starts, stops = np.flatnonzero(edges[:, key] == 1), np.flatnonzero(edges[:, key] == -1)
        peaks = [s + int(np.argmax(onset[s:e, key])) for s, e in zip(starts, stops)] + [n_frames]
        off = np.append(np.flatnonzero(frame[:, key] < frame_threshold), n_frames)
        for t0, t_next in zip(peaks[:-1], peaks[1:]):
            end = max(t0 + 1, min(int(off[np.searchsorted(off, t0 + 1)]), t_next))
            vel = int(np.clip(round(float(vel_prob[t0, key]) * 127), 1, 127))
            start = max(0.0, _refine(onset[:, key], t0)) / frames_per_second
            notes.append(NoteEvent(start, end / frames_per_second, int(min_midi + key), vel))
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def notes_to_score(notes: list[NoteEvent], program: int = PROGRAM, name: str = TRACK_NAME) -> Score:
    """Notes in seconds -> one-track ``Score`` at 120 BPM, 480 ticks per quarter (960 ticks per second)."""
    score = Score(TICKS_PER_QUARTER)
    score.tempos.append(Tempo(0, qpm=TEMPO_BPM))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    track = Track(name=name, program=program, is_drum=False)
    for n in notes:
        start = int(round(n.start * TICKS_PER_SECOND))
        end = max(start + 1, int(round(n.end * TICKS_PER_SECOND)))
        track.notes.append(Note(start, end - start, n.pitch, n.velocity))
    score.tracks.append(track)
    return score


def prepare_audio(
    audio: AudioLike, sample_rate: int | None, target_rate: int | None
) -> tuple[np.ndarray, int]:
    """Load a file or array as float32 mono ``[samples]`` at ``target_rate`` Hz (``None``: keep the rate).

    A 2-D array is ``[channels, samples]``; one with more than 16 rows and at most 16 columns is
    taken as ``[samples, channels]`` (soundfile's layout) and transposed. Returns ``(wav, rate)``.

    Raises:
        AudioError: unreadable/missing file, array without ``sample_rate``, empty or NaN/inf audio.
    """
    if isinstance(audio, np.ndarray) and audio.ndim == 2 and audio.shape[0] > 16 >= audio.shape[1]:
        audio = audio.T
    wav, rate = load_audio(audio, sample_rate=target_rate, mono=True, source_rate=sample_rate)
    return wav[0], rate


# ---- polyphonic -------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _cached_model(path: str, stamp: float) -> Transcriber:
    return Transcriber.from_pretrained(path)


def load_transcriber(checkpoint: str | os.PathLike[str] | None = None) -> Transcriber:
    """The :class:`~notewave.bridge.transcriber_model.Transcriber` in ``checkpoint`` (default: the shipped
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
    model: Any, wav: Any, sample_rate: int | None, onset_threshold: float = 0.5, frame_threshold: float = 0.5
) -> Score:
    """Polyphonic transcription of ``wav`` (path or array, see :func:`prepare_audio`) with ``model``."""
    cfg = model.config
    mono, _ = prepare_audio(wav, sample_rate, cfg.sample_rate)
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
        A one-track ``Score`` at 120 BPM (960 ticks per second), program 0; no notes for silence.

    Raises:
        AudioError: unreadable/missing file, array without rate, empty audio, NaN/inf samples.
        CheckpointError: the checkpoint is missing or broken (polyphonic path).
        ConfigError: thresholds outside (0, 1) (polyphonic path, audio not silent).
    """
    wav, rate = prepare_audio(audio, sample_rate, None)  # bad audio fails before the model loads
    if mono:
        return transcribe_mono(wav, rate)
    if np.abs(wav).max() < SILENCE_PEAK:
        return notes_to_score([])
    return transcribe_with_model(load_transcriber(checkpoint), wav, rate, onset_threshold, frame_threshold)


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

    With ``tokens_path`` also writes (atomically) a JSON object ``{"source", "midi", "num_notes",
    "ids", "tokens"}`` holding ``MidiTokenizer().encode(score)`` ids and their token names.

    Raises:
        AudioError, CheckpointError, ConfigError: see :func:`transcribe`.
    """
    from notewave.core.io import atomic_open
    from notewave.core.midi import save_score

    if not Path(in_wav).is_file():
        raise AudioError(f"audio file not found: {in_wav}")
    score = transcribe(in_wav, None, checkpoint, mono, onset_threshold, frame_threshold)
    out = save_score(score, out_mid)
    if tokens_path is not None:
        from notewave.symbolic.tokenizer import MidiTokenizer

        tokenizer = MidiTokenizer()
        ids = tokenizer.encode(score)
        record = {"source": str(in_wav), "midi": str(out), "num_notes": score.note_num(), "ids": ids}
        record["tokens"] = [tokenizer.token_name(i) for i in ids]
        with atomic_open(tokens_path) as handle:
            json.dump(record, handle)
    return out


def _cli_transcribe(args: argparse.Namespace) -> int:
    kw = {k: getattr(args, k) for k in ("checkpoint", "onset_threshold", "frame_threshold")}
    out = transcribe_file(args.input, args.output, args.mono, args.tokens, **kw)
    extra = f", tokens: {args.tokens}" if args.tokens else ""
    print(f"transcribed {args.input} -> {out} ({Score.from_midi(out.read_bytes()).note_num()} notes){extra}")
    return 0


def add_transcribe_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave transcribe IN.wav OUT.mid [--mono] [--tokens OUT.json] [--checkpoint DIR]``."""
    about = "transcribe audio to MIDI (polyphonic network, or --mono pYIN for a sung/hummed melody)"
    p = subparsers.add_parser("transcribe", help=about, description=about)
    p.add_argument("input", metavar="IN", help="audio file (WAV, FLAC, OGG, ...; any rate and channel count)")
    p.add_argument("output", metavar="OUT", help="MIDI file to write")
    p.add_argument("--mono", action="store_true", help="monophonic pYIN path (one voice, C2..C7)")
    p.add_argument("--tokens", metavar="JSON", help="also write the symbolic tokenizer's tokens as JSON")
    p.add_argument("--checkpoint", metavar="DIR", help="transcriber checkpoint (default: the shipped one)")
    p.add_argument("--onset-threshold", type=float, default=0.5, help="onset threshold (default 0.5)")
    p.add_argument("--frame-threshold", type=float, default=0.5, help="frame threshold (default 0.5)")
    p.set_defaults(func=_cli_transcribe)
    return p


def add_cli(train_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave train transcriber`` (see :mod:`notewave.bridge.transcriber_train`)."""
    from notewave.bridge.transcriber_train import add_train_cli

    return add_train_cli(train_subparsers)

"""Offline MIDI -> audio rendering with FluidSynth (https://www.fluidsynth.org) via pyfluidsynth.

The score is converted to seconds with symusic (which applies every tempo change), turned
into a time-sorted list of MIDI events, and the synthesizer is driven offline: audio is
pulled with ``Synth.get_samples`` up to each event's sample position, then the event is
sent. FluidSynth applies events at its internal 64-sample block boundaries, so timing is
exact to within one block (2 ms at 32 kHz). Reverb and chorus are off unless asked for.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from notewave.bridge.soundfont import find_soundfont, load_soundfont, select_preset
from notewave.core.io import atomic_path
from notewave.errors import AudioError, ConfigError, MidiError, RenderError

if TYPE_CHECKING:
    from symusic import Score

PathLike = str | os.PathLike[str]
DRUM_CHANNEL = 9  # MIDI channel 10, General MIDI percussion
NORMALIZE_MODES = (None, "peak", "loudness")
_SILENCE = 4.0 / 32768.0  # FluidSynth dithers its 16-bit output: +-1 LSB counts as silence
_CHUNK = 1 << 16  # frames pulled from FluidSynth per get_samples call
_NOTE_OFF, _CONTROL, _BEND, _NOTE_ON = 0, 1, 2, 3  # event kinds, in their order at equal times
MAX_SECONDS = 1200.0  # default cap on a render's length: 20 minutes (77 MB of mono 16-bit WAV at 32 kHz)
LONG_NOTE_SECONDS = 60.0  # a note held longer than this is most likely a lost note-off: warn


def _import_fluidsynth() -> Any:
    """Import pyfluidsynth lazily; RenderError with install hints when it or libfluidsynth is missing."""
    hint = "install it with `sudo apt-get install fluidsynth libfluidsynth3` and `pip install pyfluidsynth`"
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:
        raise RenderError(f"FluidSynth is not available ({exc}); {hint}") from exc
    return fluidsynth


def _load_score(midi: PathLike | bytes | Score) -> tuple[Score, str]:
    """Parse ``midi`` (path, MIDI bytes or Score) into a Score in seconds that has notes, and the
    name messages give it (the file's path, or "the given Score" ...)."""
    from notewave.core.midi import load_score, midi_name

    return load_score(midi).to("second"), midi_name(midi)


def _assign_channels(tracks: list[Any]) -> list[int]:
    """MIDI channel per track: drums on 9, melodic tracks on 0-8/10-15, shared by program past 15."""
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    melodic = [i for i, t in enumerate(tracks) if not t.is_drum]
    by_track = dict(zip(melodic, free))
    if len(melodic) > len(free):
        weight = Counter()  # programs with the most notes get their own channel
        for i in melodic:
            weight[tracks[i].program] += len(tracks[i].notes)
        kept = [p for p, _ in weight.most_common(len(free))]
        by_program = dict(zip(kept, free))
        for p in weight:  # others join the closest kept program, same GM family (program // 8) first
            by_program.setdefault(p, by_program[min(kept, key=lambda q: (q // 8 != p // 8, abs(q - p)))])
        by_track = {i: by_program[tracks[i].program] for i in melodic}
    return [by_track.get(i, DRUM_CHANNEL) for i in range(len(tracks))]


def _build_events(tracks: list[Any], channels: list[int], sample_rate: int) -> tuple[np.ndarray, float]:
    """Events as int64 rows ``[sample, kind, chan, a, b]`` sorted by time then kind; last note-off (s)."""

    def at(seconds: np.ndarray) -> np.ndarray:  # seconds -> sample index
        return np.rint(np.asarray(seconds, dtype=np.float64) * sample_rate).astype(np.int64)

    def _rows(*columns: Any) -> np.ndarray:  # scalar columns are broadcast
        return np.column_stack(np.broadcast_arrays(*(np.asarray(c, dtype=np.int64) for c in columns)))

    parts, last_off = [np.zeros((0, 5), dtype=np.int64)], 0.0
    for track, chan in zip(tracks, channels):
        notes = track.notes.numpy()
        ends = notes["time"].astype(np.float64) + notes["duration"]
        last_off = max(last_off, float(ends.max(initial=0.0)))
        keep = notes["velocity"] > 0  # velocity 0 would be a note-off
        on, pitch = at(notes["time"][keep]), notes["pitch"][keep]
        parts.append(_rows(on, _NOTE_ON, chan, pitch, np.minimum(notes["velocity"][keep], 127)))
        parts.append(_rows(np.maximum(at(ends[keep]), on + 1), _NOTE_OFF, chan, pitch, 0))
        cc = track.controls.numpy()
        parts.append(_rows(at(cc["time"]), _CONTROL, chan, cc["number"], cc["value"]))
        if not (cc["number"] == 64).any():  # parsed files hold CC64 both as controls and pedals
            pedals = track.pedals.numpy()
            parts.append(_rows(at(pedals["time"]), _CONTROL, chan, 64, 127))
            parts.append(_rows(at(pedals["time"] + pedals["duration"]), _CONTROL, chan, 64, 0))
        bends = track.pitch_bends.numpy()
        parts.append(_rows(at(bends["time"]), _BEND, chan, bends["value"], 0))
    events = np.concatenate(parts)
    return events[np.lexsort((events[:, 1], events[:, 0]))], last_off


def _check_length(score: Score, name: str, tail_seconds: float, max_seconds: float | None) -> None:
    """Warn about a note longer than :data:`LONG_NOTE_SECONDS`; RenderError past ``max_seconds``.

    ``score`` is in seconds. The longest note is named because one stuck note (a note-off lost or
    never written) is the usual reason for a render far longer than the music.
    """
    longest, where, last_off = 0.0, "", 0.0
    for track in score.tracks:
        notes = track.notes.numpy()
        if len(notes["time"]) == 0:
            continue
        last_off = max(last_off, float((notes["time"] + notes["duration"]).max()))
        i = int(notes["duration"].argmax())
        if notes["duration"][i] > longest:
            longest = float(notes["duration"][i])
            where = f"pitch {notes['pitch'][i]} of track {track.name!r}, from {notes['time'][i]:.1f} s"
    if longest > LONG_NOTE_SECONDS:
        warnings.warn(f"{name}: a note lasts {longest:.0f} s ({where}); a lost note-off?", stacklevel=3)
    length = last_off + tail_seconds
    if max_seconds is not None and length > max_seconds:
        need = int(np.ceil(length))
        raise RenderError(
            f"{name} would render to {length:.0f} s ({length / 60:.1f} min) of audio, over the cap of "
            f"{max_seconds:g} s; raise it with max_seconds={need} (CLI: --max-seconds {need}; 0 for no cap)"
        )


def _normalize(wav: np.ndarray, mode: str | None) -> np.ndarray:
    """Peak-normalize to 0.95, or scale to -20 dBFS RMS with peaks held at 0.99; silence left alone."""
    peak = float(np.abs(wav).max())
    if mode is None or peak <= _SILENCE:
        return wav
    if mode == "peak":
        return wav * np.float32(0.95 / peak)
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    scale = min(10.0 ** (-20.0 / 20.0) / rms, 0.99 / peak)
    return wav * np.float32(scale)


def render_midi(
    midi: PathLike | bytes | Score,
    sample_rate: int = 32000,
    soundfont: PathLike | None = None,
    stereo: bool = False,
    tail_seconds: float = 1.0,
    normalize: str | None = None,
    gain: float = 0.5,
    reverb: bool = False,
    chorus: bool = False,
    max_seconds: float | None = MAX_SECONDS,
) -> tuple[np.ndarray, int]:
    """Render a MIDI score to audio with FluidSynth (offline, deterministic, no audio device).

    Long renders: a score whose audio (last note-off + ``tail_seconds``) would last more than
    ``max_seconds`` (default 1200 s = 20 min, about 77 MB of mono WAV at 32 kHz) is refused before
    anything is synthesized, and a note held longer than 60 s (usually a lost note-off) gives a
    one-line warning naming it.

    Args:
        midi: a MIDI file path, the bytes of a MIDI file, or a ``symusic.Score`` (any time unit).
        sample_rate: output rate in Hz, 8000..96000 (FluidSynth's range).
        soundfont: ``.sf2``/``.sf3`` path; ``None`` uses :func:`find_soundfont`.
        stereo: return 2 channels (left, right); else 1 channel, the mean of the two.
        tail_seconds: seconds kept after the last note-off, for release and decay.
        normalize: ``None``; ``"peak"`` scales to peak 0.95; ``"loudness"`` scales to RMS -20 dBFS
            then lowers it if needed so the peak is at most 0.99. Near-silence is left as is.
        gain: FluidSynth master gain (``synth.gain``), 0 < gain <= 10.
        reverb, chorus: enable FluidSynth's reverb / chorus effects (off by default).
        max_seconds: longest audio to render, in seconds (> 0); ``None`` renders any length.

    Returns:
        ``(wav, sample_rate)``: ``wav`` is float32 in [-1, 1] with shape ``[channels, samples]``
        (channels 1 or 2), exactly ``round((last note-off in seconds + tail_seconds) * sample_rate)``
        samples long, time measured from 0 s of the score.

    Raises:
        MidiError: unreadable or corrupt MIDI (the message names the file), or no notes.
        SoundfontError: no SoundFont found, or FluidSynth cannot load it.
        RenderError: FluidSynth/pyfluidsynth missing, ``sample_rate`` outside 8000..96000, or the
            audio would be longer than ``max_seconds`` (the message gives the length).
        ConfigError: negative ``tail_seconds``, unknown ``normalize``, ``gain`` out of range,
            ``max_seconds`` not > 0.
    """
    whole = isinstance(sample_rate, (int, float, np.number)) and float(sample_rate).is_integer()
    if not whole or not 8000 <= sample_rate <= 96000:
        raise RenderError(f"sample_rate {sample_rate!r} must be whole Hz within FluidSynth's 8000..96000")
    if not tail_seconds >= 0 or normalize not in NORMALIZE_MODES or not 0 < gain <= 10:
        raise ConfigError(
            f"need tail_seconds >= 0, normalize in {NORMALIZE_MODES} and 0 < gain <= 10; "
            f"got tail_seconds={tail_seconds!r}, normalize={normalize!r}, gain={gain!r}"
        )
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"max_seconds must be > 0 seconds (or None for no cap), got {max_seconds!r}")
    sample_rate = int(sample_rate)  # ints, or floats like 32000.0
    sf_path = find_soundfont(soundfont)
    score, name = _load_score(midi)
    _check_length(score, name, tail_seconds, max_seconds)
    fluidsynth = _import_fluidsynth()

    tracks = [t for t in score.tracks if len(t.notes) > 0]
    channels = _assign_channels(tracks)
    events, last_off = _build_events(tracks, channels, sample_rate)
    total = round((last_off + tail_seconds) * sample_rate)
    effects = {"synth.reverb.active": int(reverb), "synth.chorus.active": int(chorus)}
    synth = fluidsynth.Synth(gain=float(gain), samplerate=sample_rate, channels=16, **effects)
    try:
        if synth.get_setting("synth.sample-rate") != sample_rate:
            raise RenderError(f"FluidSynth refused sample_rate {sample_rate} Hz")
        sfid = load_soundfont(synth, sf_path)
        send = {_NOTE_ON: synth.noteon, _NOTE_OFF: lambda c, k, _: synth.noteoff(c, k), _CONTROL: synth.cc}
        send[_BEND] = lambda c, value, _: synth.pitch_bend(c, value)
        for chan in sorted(set(channels)):  # a shared channel plays its first track's program
            bank = 128 if chan == DRUM_CHANNEL else 0  # 128: General MIDI percussion bank
            select_preset(synth, chan, sfid, bank, tracks[channels.index(chan)].program)
        out, cursor, held = np.zeros((total, 2), dtype=np.int16), 0, {}
        for sample, kind, chan, a, b in [*events.tolist(), [total, -1, 0, 0, 0]]:
            while cursor < min(sample, total):  # get_samples(n) gives n interleaved stereo int16 frames
                n = min(sample, total, cursor + _CHUNK) - cursor
                out[cursor : cursor + n] = synth.get_samples(n).reshape(n, 2)
                cursor += n
            if sample >= total:
                break
            if kind == _NOTE_OFF:  # overlapping notes of one key on one channel end with the last note-off
                held[chan, a] = held.get((chan, a), 1) - 1
                if held[chan, a] > 0:
                    continue
            elif kind == _NOTE_ON:
                held[chan, a] = held.get((chan, a), 0) + 1
            send[kind](chan, a, b)
    finally:
        synth.delete()
    wav = out.T.astype(np.float32) / np.float32(32768.0)
    if not stereo:
        wav = wav.mean(axis=0, keepdims=True, dtype=np.float32)
    return np.ascontiguousarray(_normalize(wav, normalize), dtype=np.float32), sample_rate


render = render_midi


def write_wav(path: PathLike, wav: np.ndarray, sample_rate: int) -> Path:
    """Write ``wav`` (float, ``[channels, samples]`` or 1-D mono, values in [-1, 1]) as 16-bit PCM WAV.

    Written atomically (temporary file beside ``path``, then renamed); samples beyond [-1, 1]
    are clipped. Returns ``Path(path)``. Raises AudioError for an empty waveform, a wrong
    shape or NaN/inf samples, ConfigError for a non-positive ``sample_rate`` (Hz).
    """
    import soundfile

    data, name = np.asarray(wav, dtype=np.float32), os.fspath(path)
    data = data[None, :] if data.ndim == 1 else data
    if data.ndim != 2 or data.size == 0 or data.shape[0] > 16:
        raise AudioError(f"cannot write {name!r}: need [channels, samples] audio, not shape {data.shape}")
    if not np.isfinite(data).all():
        raise AudioError(f"cannot write {name!r}: the waveform holds NaN or inf samples")
    if int(sample_rate) <= 0:
        raise ConfigError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    with atomic_path(path) as tmp:
        soundfile.write(tmp, np.clip(data, -1.0, 1.0).T, int(sample_rate), subtype="PCM_16", format="WAV")
    return Path(path)


def render_file(midi_path: PathLike, wav_path: PathLike, **kwargs: Any) -> Path:
    """Render one MIDI file to 16-bit WAV (``kwargs``, errors: see :func:`render_midi`); return the path."""
    wav, sample_rate = render_midi(midi_path, **kwargs)
    return write_wav(wav_path, wav, sample_rate)


def render_folder(
    in_dir: PathLike, out_dir: PathLike, pattern: str = "*.mid", progress: bool = True, **kwargs: Any
) -> list[Path]:
    """Render every file in ``in_dir`` matching ``pattern`` (glob, ``**`` recurses) to ``out_dir``.

    Names and sub-folders are mirrored (``a/x.mid`` -> ``out_dir/a/x.wav``); a tqdm progress bar
    is shown when ``progress``. ``kwargs`` go to :func:`render_midi`; the SoundFont is resolved
    once up front. Stops at the first failing file. Returns the WAV paths in sorted input order.
    Raises MidiError when ``in_dir`` is not a folder or nothing matches ``pattern``.
    """
    from tqdm import tqdm

    source, target = Path(in_dir), Path(out_dir)
    if not source.is_dir():
        raise MidiError(f"MIDI folder {str(source)!r} does not exist or is not a folder")
    files = sorted(p for p in source.glob(pattern) if p.is_file())
    if not files:
        raise MidiError(f"no files matching {pattern!r} in MIDI folder {str(source)!r}")
    kwargs["soundfont"] = find_soundfont(kwargs.get("soundfont"))
    bar = tqdm(files, desc="render", unit="file", disable=not progress)
    return [render_file(p, target / p.relative_to(source).with_suffix(".wav"), **kwargs) for p in bar]

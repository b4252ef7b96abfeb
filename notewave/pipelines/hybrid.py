"""The hybrid pipelines: a MIDI sketch to a composition and its audio, and a recording to its
continuation.

* :func:`compose`: continue (or infill bars of) a MIDI sketch with the
  :class:`~notewave.pipelines.composer.Composer`, render the result with FluidSynth, and let the
  audio LM (:class:`~notewave.pipelines.sound.SoundGenerator`) play it from its melody chroma
  (taken straight from the notes) with classifier-free guidance.
* :func:`continue_audio`: transcribe a recording, continue its notes with the composer and render
  them, and let the audio LM continue the recording itself (its codec codes as the audio prompt,
  AudioLM-style, Borsos et al. 2023) under the continuation's melody chroma (MusicGen-melody, Copet
  et al. 2023); each continuation is joined to the original with an equal-power crossfade.

Both measure melody adherence (the chroma cosine of ``bench/melody_adherence.py``), and with
``out_dir`` write MIDI, WAV, PNG and a JSON report there atomically, only once everything has been
computed: a bad input is a one-line :class:`~notewave.errors.NotewaveError` with nothing written.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from symusic import Score

from notewave.bridge.notation import finish_at_bar
from notewave.bridge.render import render_midi
from notewave.bridge.transcription.transcribe import transcribe
from notewave.core.audio_io import AudioLike, load_audio
from notewave.core.midi import MidiLike, bar_grid, midi_name
from notewave.errors import AudioError, ConfigError
from notewave.paths import DEFAULT_AUDIO_CHECKPOINT, DEFAULT_SYMBOLIC_CHECKPOINT
from notewave.pipelines.composer import Composer
from notewave.pipelines.hybrid_audio import (
    check_recording,
    join_at_seam,
    lm_window,
    match_level,
    melody_window,
    tick_seconds,
)
from notewave.pipelines.hybrid_models import (
    AUDIO_CHOICES,
    DEFAULT_SAMPLE_RATE,
    load_models,
    melody_report,
    parse_span,
)
from notewave.pipelines.hybrid_report import (
    ComposeResult,
    ContinueAudioResult,
    piano_roll_figure,
    spectrogram_figure,
    write_outputs,
)
from notewave.pipelines.sound import SoundGenerator
from notewave.symbolic.compose import read_piece, track_indices

CROSSFADE_SECONDS = 0.05  #: equal-power crossfade at a seam, in seconds


def _finish(score: Score) -> Score:
    """``score`` ended on its last bar line, as :meth:`Composer.save` writes it."""
    return finish_at_bar(score, int(bar_grid(score).lines[-1]))


def _check_options(audio: str, seconds: float | None) -> None:
    if audio not in AUDIO_CHOICES:
        raise ConfigError(f"audio must be one of {', '.join(AUDIO_CHOICES)}, got {audio!r}")
    ok = seconds is None or (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0)
    if not ok:
        raise ConfigError(f"seconds must be a positive number of seconds, got {seconds!r}")


def _notes_between(score: Score, start: int, stop: int) -> int:
    """Notes (all tracks) starting in ticks ``[start, stop)``."""
    return sum(
        int(((t.notes.numpy()["time"] >= start) & (t.notes.numpy()["time"] < stop)).sum())
        for t in score.tracks
    )


def compose(
    sketch: MidiLike,
    bars: int | None = None,
    *,
    infill: str | tuple[int, int] | None = None,
    tracks: str | list[str] | None = None,
    prompt_bars: int | None = None,
    style: str | None = None,
    audio: str = "both",
    text: str | None = None,
    seconds: float | None = None,
    cfg_coef: float = 3.0,
    seed: int = 0,
    checkpoint: str | os.PathLike[str] | Composer = DEFAULT_SYMBOLIC_CHECKPOINT,
    audio_checkpoint: str | os.PathLike[str] | SoundGenerator = DEFAULT_AUDIO_CHECKPOINT,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> ComposeResult:
    """Sketch -> MIDI -> audio: continue or infill ``sketch``, render it, and play it with the audio LM.

    Args:
        sketch: a MIDI file, MIDI bytes or ``symusic.Score`` (the sketch, with any tracks).
        bars: bars to continue by (default 4); not with ``infill``.
        infill: regenerate bars ``"A-B"`` / ``(A, B)`` (1-based, inclusive) of the sketch instead.
        tracks: with ``infill``, the track names to regenerate (default all).
        prompt_bars: use only the first N bars of the sketch.
        style: composer style token (see ``Composer.styles``); passed to the audio LM too when it
            knows the style.
        audio: ``"fluidsynth"``, ``"lm"`` or ``"both"``: which audio to make.
        text: description for the audio LM (sentence embedding).
        seconds: audio LM length in seconds from the start of the new bars (a window ending at the
            composition's end when that comes first); default: exactly the new bars.
        cfg_coef: classifier-free guidance strength of the audio LM (1: off).
        seed: seed of the composer and of the audio LM; the same seed and inputs, the same output.
        checkpoint: composer checkpoint folder (any MIDI LM checkpoint) or a ``Composer``.
        audio_checkpoint: audio LM checkpoint folder or a ``SoundGenerator``.
        out_dir: folder to write ``composition.mid``, ``composition_fluidsynth.wav``,
            ``composition_audio_lm.wav``, ``piano_roll.png``, ``spectrogram.png`` and ``report.json``.
        progress: tqdm bars while composing and generating audio.

    Returns:
        A :class:`ComposeResult`; its ``report`` holds bars, notes, seconds, seeds, checkpoints and
        the melody chroma cosine of the LM audio (and of the FluidSynth render, as a reference)
        against the notes, each in [0, 1] (``None`` when no frame sounds in both).

    Raises:
        MidiError: unreadable sketch or a sketch with no notes (or only drums).
        ConfigError: ``bars`` and ``infill`` both given, ``bars < 1``, an infill span outside the
            sketch, an unknown track, bad ``audio`` or ``seconds``.
        ConditioningError: an unknown style; text for an audio LM without text conditioning.
        CheckpointError, RenderError, SoundfontError, TokenizerError: see the building blocks.
    """
    began = time.perf_counter()
    _check_options(audio, seconds)
    if bars is not None and infill is not None:
        raise ConfigError("give either bars (continue the sketch) or infill (regenerate a span), not both")
    if tracks is not None and infill is None:
        raise ConfigError("tracks only go with infill (the tracks whose bars are regenerated)")
    models = load_models(checkpoint, audio_checkpoint if audio != "fluidsynth" else None, style, text)
    name = midi_name(sketch)
    score, piece = read_piece(models.composer.vocab, sketch, style, prompt_bars)
    before = bar_grid(score)
    if infill is not None:
        first, last = parse_span(infill)
        if first < 1 or last < first or last > before.bars:  # the score's bars (a 10/4 bar is one)
            raise ConfigError(
                f"infill span {first}-{last} is not inside {name}, which has bars 1-{before.bars}"
            )
        track_indices(piece, tracks, name)
        options = dict(style=style, seed=seed, progress=progress)
        result = models.composer.infill(score, (first, last), tracks, **options)
    else:
        bars = 4 if bars is None else bars
        result = models.composer.continue_midi(score, bars=bars, style=style, seed=seed, progress=progress)
        first, last = before.bars + 1, before.bars + bars
    finished = _finish(result)
    grid = bar_grid(finished)
    span_ticks = int(grid.lines[first - 1]), int(grid.lines[last])
    new_span = tuple(float(s) for s in tick_seconds(finished, np.array(span_ticks)))
    end = float(tick_seconds(finished, int(grid.lines[-1])))
    sound = models.sound
    rate = sound.sample_rate if sound is not None else DEFAULT_SAMPLE_RATE
    fluid = None if audio == "lm" else render_midi(finished, sample_rate=rate, normalize="loudness")[0]
    lm_audio = melody = window = None
    offset = 0
    if sound is not None:
        start, stop = lm_window(new_span, end, seconds)
        melody, offset, samples = melody_window(finished, rate, sound.frame_rate, start, stop - start)
        window = (offset / rate, (offset + samples) / rate)
        lm_audio = sound.generate(
            melody=melody, text=text, style=models.lm_style, seconds=samples / rate, cfg_coef=cfg_coef,
            seed=seed, progress=progress,
        )[0]  # fmt: skip
    report = {
        "command": "compose",
        "sketch": name,
        "mode": "infill" if infill is not None else "continue",
        "bars": {
            "sketch": before.bars,
            "new": last - first + 1,
            "total": grid.bars,
            "new_span": [first, last],
        },
        "notes": {
            "sketch": score.note_num(),
            "total": finished.note_num(),
            "in_new_bars": _notes_between(finished, *span_ticks),
        },
        "tracks": [t.name for t in finished.tracks if len(t.notes)],
        "seconds": {
            "midi": round(end, 4),
            "new_bars": [round(s, 4) for s in new_span],
            "fluidsynth_wav": None if fluid is None else fluid.shape[-1] / rate,
            "audio_lm_wav": None if lm_audio is None else lm_audio.shape[-1] / rate,
            "audio_lm_window": None if window is None else [round(s, 4) for s in window],
        },
        "sample_rate": rate,
        **models.describe(style, text, cfg_coef, seed),
        "melody_chroma_cosine": melody_report(
            sound, melody, lm_audio, None if fluid is None or window is None else fluid[:, offset:], rate
        ),
    }
    out = ComposeResult(finished, new_span, rate, fluid, lm_audio, window, melody, report)
    if out_dir is not None:
        wavs = {}
        if fluid is not None:
            wavs["fluidsynth_wav"] = ("composition_fluidsynth.wav", fluid, rate)
        if lm_audio is not None:
            wavs["audio_lm_wav"] = ("composition_audio_lm.wav", lm_audio, rate)
        figures = {
            "piano_roll": (
                "piano_roll.png",
                piano_roll_figure(finished, new_span, f"{name}: {report['mode']}"),
            )
        }
        figures["spectrogram"] = ("spectrogram.png", spectrogram_figure(out.panels(), new_span))
        report["wall_seconds"] = round(time.perf_counter() - began, 2)
        out.paths = write_outputs(out_dir, {"midi": ("composition.mid", finished)}, wavs, figures, report)
    return out


def _transcribe(wav: np.ndarray, rate: int, name: str, mono: bool, checkpoint: Any) -> Score:
    """Notes of the recording; AudioError (with the transcriber's reason) when none is found."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        notes = transcribe(wav, rate, checkpoint=checkpoint, mono=mono)
    if notes.note_num() == 0:
        why = str(caught[-1].message).split(": ", 1)[-1] if caught else "no notes found"
        raise AudioError(f"{name}: nothing to continue: {why}")
    return notes


def continue_audio(
    recording: AudioLike,
    bars: int = 4,
    *,
    seconds: float = 4.0,
    sample_rate: int | None = None,
    style: str | None = None,
    audio: str = "both",
    text: str | None = None,
    mono: bool = False,
    crossfade: float = CROSSFADE_SECONDS,
    cfg_coef: float = 3.0,
    seed: int = 0,
    checkpoint: str | os.PathLike[str] | Composer = DEFAULT_SYMBOLIC_CHECKPOINT,
    audio_checkpoint: str | os.PathLike[str] | SoundGenerator = DEFAULT_AUDIO_CHECKPOINT,
    transcriber: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> ContinueAudioResult:
    """Recording -> notes -> continuation -> audio, and the audio LM continuing the recording itself.

    The recording (mono, at the audio LM's rate) is transcribed; the composer continues the notes
    by ``bars`` bars from the first bar line after the last note (120 BPM, 4/4: a bar is 2 s), and
    the whole score is rendered with FluidSynth at the recording's loudness; the recording plays up
    to the continuation's start (or its own end, if sooner), then the render. The audio LM gets the
    recording's codec codes as its prompt and the continued score's melody chroma, and writes
    ``seconds`` more; the original recording plays up to its end, then the LM's audio. Both seams
    are equal-power crossfades of ``crossfade`` seconds ending at the seam.

    Args:
        recording: an audio file (WAV, FLAC, OGG, ...) or float array ``[channels, samples]``.
        bars: bars the composer adds (>= 1).
        seconds: seconds of audio the LM adds after the recording (> 0; keep it short on a CPU).
        sample_rate: the rate of an array ``recording`` in Hz.
        style, text, cfg_coef, seed, checkpoint, audio_checkpoint, audio, progress: as in :func:`compose`.
        mono: transcribe with pYIN (one voice: hummed, sung, whistled) instead of the network.
        crossfade: seam crossfade in seconds (>= 0).
        transcriber: transcriber checkpoint (default the shipped one).
        out_dir: folder to write ``transcription.mid``, ``continuation.mid``,
            ``continuation_fluidsynth.wav``, ``continuation_audio_lm.wav``, ``piano_roll.png``,
            ``spectrogram.png`` and ``report.json``.

    Returns:
        A :class:`ContinueAudioResult`; the report's melody chroma cosine is measured after the
        recording's end.

    Raises:
        AudioError: unreadable audio, a recording shorter than 1 s, silent, or without a note.
        ConfigError: ``bars < 1``, bad ``seconds``, ``crossfade`` or ``audio``.
        ConditioningError, CheckpointError, RenderError, SoundfontError: as :func:`compose`.
    """
    began = time.perf_counter()
    _check_options(audio, seconds)
    if isinstance(bars, bool) or not isinstance(bars, int) or bars < 1:
        raise ConfigError(f"bars must be a whole number >= 1, got {bars!r}")
    if not (isinstance(crossfade, int | float) and 0 <= crossfade < math.inf):
        raise ConfigError(f"crossfade must be >= 0 seconds, got {crossfade!r}")
    models = load_models(checkpoint, audio_checkpoint if audio != "fluidsynth" else None, style, text)
    sound = models.sound
    rate = sound.sample_rate if sound is not None else DEFAULT_SAMPLE_RATE
    name = str(recording) if isinstance(recording, str | os.PathLike) else "the given recording"
    wav, _ = load_audio(recording, sample_rate=rate, mono=True, source_rate=sample_rate, name=name)
    check_recording(wav, rate, name)
    notes = _transcribe(wav, rate, name, mono, transcriber)
    cont_tick = int(bar_grid(notes).lines[-1])
    result = models.composer.continue_midi(notes, bars=bars, style=style, seed=seed, progress=progress)
    finished = _finish(result)
    grid = bar_grid(finished)
    new_span = (float(tick_seconds(finished, cont_tick)), float(tick_seconds(finished, int(grid.lines[-1]))))
    length, fade = wav.shape[-1], round(crossfade * rate)
    fluid = lm_audio = melody = None
    seams: tuple[float | None, float | None] = (None, None)
    if audio != "lm":
        seam = min(length, round(new_span[0] * rate))
        render = match_level(render_midi(finished, sample_rate=rate)[0], wav)
        fluid, seams = join_at_seam(wav, render, seam, fade), (seam / rate, None)
    if sound is not None:
        melody, _, total = melody_window(finished, rate, sound.frame_rate, 0.0, length / rate + seconds)
        generated = sound.generate(
            melody=melody, text=text, style=models.lm_style, seconds=total / rate, prompt_audio=wav,
            cfg_coef=cfg_coef, seed=seed, progress=progress,
        )[0]  # fmt: skip
        lm_audio, seams = join_at_seam(wav, generated, length, fade), (seams[0], length / rate)
    hop = None if sound is None else round(rate / sound.frame_rate)
    first_frame = 0 if hop is None else -(-length // hop)  # the first frame after the recording
    report = {
        "command": "continue-audio",
        "recording": name,
        "bars": {"transcription": bar_grid(notes).bars, "new": bars, "total": grid.bars},
        "notes": {
            "transcription": notes.note_num(),
            "total": finished.note_num(),
            "in_new_bars": _notes_between(finished, cont_tick, int(grid.lines[-1])),
        },
        "seconds": {
            "recording": length / rate,
            "new_bars": [round(s, 4) for s in new_span],
            "seam_fluidsynth": seams[0],
            "seam_audio_lm": seams[1],
            "fluidsynth_wav": None if fluid is None else fluid.shape[-1] / rate,
            "audio_lm_wav": None if lm_audio is None else lm_audio.shape[-1] / rate,
            "crossfade": fade / rate,
        },
        "sample_rate": rate,
        "transcriber": "pYIN (mono)" if mono else str(transcriber or "data/checkpoints/transcriber"),
        **models.describe(style, text, cfg_coef, seed),
        "melody_chroma_cosine": melody_report(
            sound,
            None if melody is None else melody[:, first_frame:],
            None if lm_audio is None else lm_audio[:, first_frame * (hop or 0) :],
            None if fluid is None or hop is None else fluid[:, first_frame * hop :],
            rate,
        ),
    }
    out = ContinueAudioResult(wav, notes, finished, new_span, rate, fluid, lm_audio, seams, melody, report)
    if out_dir is not None:
        midis = {"transcription": ("transcription.mid", notes), "midi": ("continuation.mid", finished)}
        wavs = {}
        if fluid is not None:
            wavs["fluidsynth_wav"] = ("continuation_fluidsynth.wav", fluid, rate)
        if lm_audio is not None:
            wavs["audio_lm_wav"] = ("continuation_audio_lm.wav", lm_audio, rate)
        title = f"{Path(name).name}: transcription + {bars} bars"
        figures = {"piano_roll": ("piano_roll.png", piano_roll_figure(finished, new_span, title, seams[0]))}
        figures["spectrogram"] = ("spectrogram.png", spectrogram_figure(out.panels(), new_span, seams[0]))
        report["wall_seconds"] = round(time.perf_counter() - began, 2)
        out.paths = write_outputs(out_dir, midis, wavs, figures, report)
    return out

"""Chromagrams of real audio (sines, FluidSynth renders of Bach chorales) and of MIDI scores; no mocks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from symusic import Note, Score, Tempo, Track

from notewave.bridge.chroma import (
    DEFAULT_FRAME_RATE,
    chroma_from_audio,
    chroma_from_midi,
    chroma_similarity,
    default_n_fft,
    plot_chroma,
)
from notewave.errors import AudioError, ConfigError, MidiError
from notewave.paths import JSB_MIDI_DIR

SR = 32000
HOP = 640
TPQ = 480
C, E, G, A = 0, 4, 7, 9
TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def _fluidsynth_ok() -> bool:
    try:
        import fluidsynth  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


needs_synth = pytest.mark.skipif(not TIMGM.is_file() or not _fluidsynth_ok(), reason="no FluidSynth/TimGM6mb")


def sines(freqs, seconds=1.0, sr=SR, amp=0.2) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return sum(amp * np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32)[None]


def make_score(tracks, tempos=((0, 120.0),)) -> Score:
    """``tracks``: lists of (start tick, duration ticks, pitch, velocity), or (notes, is_drum) pairs."""
    score = Score(TPQ)
    for tick, qpm in tempos:
        score.tempos.append(Tempo(tick, qpm))
    for item in tracks:
        notes, drum = item if isinstance(item, tuple) else (item, False)
        track = Track(name="t", program=0, is_drum=drum)
        for note in notes:
            track.notes.append(Note(*note))
        score.tracks.append(track)
    return score


def test_default_frame_rate_and_n_fft():
    assert DEFAULT_FRAME_RATE == 50.0 and SR / DEFAULT_FRAME_RATE == HOP
    assert default_n_fft(SR, HOP) == 8192 and default_n_fft(48000, 960) == 16384
    assert default_n_fft(16000, 4000) == 16384  # at least 4 hops


@pytest.mark.parametrize("samples", [1, 639, 640, 641, 32000, 32001])
def test_audio_frame_count_is_ceil_samples_over_hop(samples):
    wav = np.random.default_rng(0).standard_normal(samples).astype(np.float32) * 0.1
    chroma = chroma_from_audio(wav, SR)
    assert chroma.shape == (12, math.ceil(samples / HOP)) and chroma.dtype == np.float32
    assert chroma_from_audio(wav, SR, frame_rate=100, n_fft=1024).shape == (12, math.ceil(samples / 320))


def test_sine_440_is_a():
    chroma = chroma_from_audio(sines([440.0], seconds=2.0), SR)
    assert chroma.shape == (12, 100)
    assert (chroma.argmax(axis=0) == A).mean() >= 0.95
    assert np.allclose(chroma.max(axis=0), 1.0)  # L-inf normalised


def test_c_major_triad_top3():
    chroma = chroma_from_audio(sines([261.63, 329.63, 392.0]), SR)
    assert set(np.argsort(chroma.mean(axis=1))[-3:]) == {C, E, G}
    onehot = chroma_from_audio(sines([261.63, 329.63, 392.0]), SR, argmax=True)
    assert set(np.flatnonzero(onehot.sum(axis=1))) <= {C, E, G}


def test_input_forms_agree():
    wav = sines([440.0, 659.26], seconds=1.0)
    ref = chroma_from_audio(wav, SR)
    assert np.array_equal(chroma_from_audio(wav[0], SR), ref)
    assert np.array_equal(chroma_from_audio(torch.from_numpy(wav), SR), ref)
    assert np.allclose(chroma_from_audio(np.concatenate([wav, wav]), SR), ref, atol=1e-6)  # stereo -> mono


def test_path_input_is_resampled(tmp_path):
    from notewave.bridge.render import write_wav

    path = write_wav(tmp_path / "a.wav", sines([440.0], sr=44100), 44100)
    chroma = chroma_from_audio(path, SR)
    assert chroma.shape == (12, 50) and (chroma.argmax(axis=0) == A).mean() >= 0.95
    with pytest.raises(AudioError):
        chroma_from_audio(tmp_path / "missing.wav", SR)


def test_silence_is_zero_without_nan():
    assert not chroma_from_audio(np.zeros((1, SR), np.float32), SR).any()
    wav = np.concatenate([sines([440.0]), np.zeros((1, 2 * SR), np.float32)], axis=1)
    for argmax in (False, True):
        chroma = chroma_from_audio(wav, SR, argmax=argmax)
        assert np.isfinite(chroma).all() and chroma[:, :45].any(axis=0).all() and not chroma[:, 70:].any()
    quiet = sines([440.0], amp=1e-4)  # -83 dBFS: silent by default, not with silence_db=None
    assert (
        not chroma_from_audio(quiet, SR).any() and chroma_from_audio(quiet, SR, silence_db=None).all(0).any()
    )


def test_audio_errors():
    with pytest.raises(AudioError):
        chroma_from_audio(np.full((1, SR), np.nan, np.float32), SR)
    with pytest.raises(AudioError):
        chroma_from_audio(np.zeros((1, 0), np.float32), SR)
    for sr, rate in [(SR, 48.0), (SR, 0), (SR, -50.0), (SR, math.nan), (0, 50.0), (SR, 1e9)]:
        with pytest.raises(ConfigError):
            chroma_from_audio(sines([440.0]), sr, frame_rate=rate)
    with pytest.raises(ConfigError):
        chroma_from_audio(sines([440.0]), SR, n_fft=512)  # shorter than the hop


def test_midi_single_c4_one_second():
    score = make_score([[(0, 2 * TPQ, 60, 100)]])  # 2 beats at 120 BPM = 1 s
    for mode in ("velocity", "melody"):
        chroma = chroma_from_midi(score, mode=mode)
        assert chroma.shape == (12, 50) and chroma.dtype == np.float32
        assert (chroma[C] == 1).all() and not np.delete(chroma, C, axis=0).any()
    raw = chroma_from_midi(score, normalize=False, duration=1.5)
    assert raw.shape == (12, 75) and (raw[C, :50] == 100).all() and not raw[:, 50:].any()


def test_midi_frame_policy_and_velocity_sum():
    # 0.25..0.3125 s touches frames 12..15 (12.5 to 15.6); two voices on pitch class E add their velocities
    score = make_score([[(240, 60, 64, 40), (0, 4 * TPQ, 52, 30)], [(0, 4 * TPQ, 48, 50)]])
    raw = chroma_from_midi(score, normalize=False)
    assert raw.shape == (12, 100)
    assert np.array_equal(np.flatnonzero(raw[E] == 70), np.arange(12, 16))
    assert (raw[C] == 50).all() and raw.sum() == 100 * 80 + 4 * 40
    assert np.allclose(chroma_from_midi(score)[:, 0], raw[:, 0] / 50)


def test_melody_mode_takes_the_top_voice():
    soprano = [(0, TPQ, 69, 90), (TPQ, TPQ, 71, 90)]  # A4 then B4, 0.5 s each
    score = make_score([soprano, [(0, 2 * TPQ, 64, 100)], [(0, 2 * TPQ, 48, 110)]])
    melody = chroma_from_midi(score, mode="melody")
    assert (melody[A, :25] == 1).all() and (melody[11, 25:] == 1).all() and melody.sum() == 50
    assert (chroma_from_midi(score, argmax=True).argmax(axis=0) == C).all()  # loudest class


def test_drums_ignored_and_midi_inputs(tmp_path):
    pitched = [(0, 2 * TPQ, 67, 80)]
    score = make_score([pitched, ([(0, 4 * TPQ, 36, 127)], True)])
    chroma = chroma_from_midi(score)
    assert chroma.shape == (12, 100)  # default duration: last note-off of any track, drums included
    assert (chroma[G, :50] == 1).all() and not np.delete(chroma, G, axis=0).any() and not chroma[:, 50:].any()
    assert not chroma_from_midi(make_score([([(0, TPQ, 36, 127)], True)])).any()
    path = tmp_path / "s.mid"
    score.dump_midi(str(path))
    assert np.array_equal(chroma_from_midi(path), chroma)
    assert np.array_equal(chroma_from_midi(path.read_bytes()), chroma)
    with pytest.raises(MidiError):
        chroma_from_midi(b"not a midi file")


def test_tempo_change_aligns_in_seconds():
    # 120 BPM for 2 beats (1 s), then 60 BPM: tick 960 is 1.0 s, tick 1440 is 2.0 s
    score = make_score(
        [[(0, 2 * TPQ, 60, 80), (2 * TPQ, TPQ, 62, 80), (3 * TPQ, TPQ, 64, 80)]], ((0, 120.0), (960, 60.0))
    )
    top = chroma_from_midi(score, argmax=True).argmax(axis=0)
    assert len(top) == 150 and (top[:50] == C).all() and (top[50:100] == 2).all() and (top[100:] == E).all()


def test_argmax_is_one_hot_per_non_silent_frame():
    score = make_score([[(0, TPQ, 60, 80), (2 * TPQ, TPQ, 67, 80)], [(0, TPQ, 64, 80)]])
    midi = chroma_from_midi(score, argmax=True)
    sounding = chroma_from_midi(score).any(axis=0)
    assert set(np.unique(midi)) <= {0.0, 1.0} and np.array_equal(
        midi.sum(axis=0), sounding.astype(np.float32)
    )
    assert (midi[C, :25] == 1).all()  # C4 and E4 tie at velocity 80: the lower note's class wins
    audio = chroma_from_audio(
        np.concatenate([sines([440.0]), np.zeros((1, SR), np.float32)], axis=1), SR, argmax=True
    )
    assert set(np.unique(audio)) == {0.0, 1.0} and set(np.unique(audio.sum(axis=0))) == {0.0, 1.0}


def test_midi_errors():
    score = make_score([[(0, TPQ, 60, 80)]])
    for kwargs in [
        {"mode": "chords"},
        {"frame_rate": 0},
        {"frame_rate": math.inf},
        {"duration": 0},
        {"duration": -1.0},
    ]:
        with pytest.raises(ConfigError):
            chroma_from_midi(score, **kwargs)


def test_similarity_metric():
    a = np.zeros((12, 6), np.float32)
    a[C, :4] = 1.0
    b = np.zeros((12, 8), np.float32)
    b[C, 0], b[[C, E], 1], b[E, 2] = 1.0, 1.0, 1.0  # same, half overlap, orthogonal; frame 3 silent in b
    mean, per_frame = chroma_similarity(a, b)
    assert per_frame.shape == (6,) and np.allclose(per_frame[:3], [1.0, 1 / np.sqrt(2), 0.0])
    assert np.isnan(per_frame[3:]).all() and mean == pytest.approx((1 + 1 / np.sqrt(2)) / 3)
    assert math.isnan(chroma_similarity(a, np.zeros((12, 6)))[0])
    for bad in (np.zeros((11, 6)), np.zeros(12), np.full((12, 6), np.nan)):
        with pytest.raises(ConfigError):
            chroma_similarity(a, bad)


def test_plot_chroma(tmp_path):
    chroma = chroma_from_midi(make_score([[(0, TPQ, 60, 80)]]))
    path = plot_chroma(chroma, tmp_path / "sub" / "c.png", title="C4")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in path.parent.iterdir()] == [
        "c.png"
    ]
    with pytest.raises(ConfigError):
        plot_chroma(np.zeros((3, 4)), tmp_path / "x.png")


@pytest.fixture(scope="module")
def chorale_renders():
    """First 10 s (6400 ticks at 80 BPM) of 3 real chorales, rendered whole and soprano-only."""
    from notewave.bridge.render import render_midi

    out = []
    for name in ("jsb_test_000.mid", "jsb_test_001.mid", "jsb_test_002.mid"):
        score = Score(str(JSB_MIDI_DIR / "test" / name)).clip(0, 6400)
        soprano = score.copy()
        soprano.tracks = [t for t in score.tracks if t.name == "Soprano"]
        full, _ = render_midi(score, SR, soundfont=TIMGM)
        top, _ = render_midi(soprano, SR, soundfont=TIMGM)
        out.append((score, full, top))
    return out


@needs_synth
def test_rendered_chorales_match_midi_chroma(chorale_renders):
    # Measured on the first 10 s of chorales 000-019 (TimGM6mb, 32 kHz, n_fft 8192): velocity-mode
    # cosine 0.913-0.940; audio argmax on a sounding MIDI pitch class in 97.1-99.1% of frames;
    # audio argmax == MIDI velocity argmax in 52-85%; soprano-only render vs melody mode 0.88-0.95
    # (argmax vs argmax 0.89-0.98); the whole render vs melody mode only 0.40-0.61.
    for score, full, soprano in chorale_renders:
        seconds = full.shape[-1] / SR
        audio = chroma_from_audio(full, SR)
        velocity = chroma_from_midi(score, duration=seconds)
        assert audio.shape == velocity.shape == (12, math.ceil(full.shape[-1] / HOP))
        similarity, per_frame = chroma_similarity(audio, velocity)
        assert similarity > 0.8
        melody = chroma_from_midi(score, mode="melody", duration=seconds)
        assert chroma_similarity(audio, melody)[0] < similarity - 0.2  # melody mode drops the lower voices
        onehot = chroma_from_audio(full, SR, argmax=True)
        counted = ~np.isnan(per_frame)
        hits = velocity[onehot.argmax(axis=0), np.arange(velocity.shape[1])] > 0
        assert hits[counted].mean() > 0.9
        assert chroma_similarity(onehot, chroma_from_midi(score, duration=seconds, argmax=True))[0] > 0.5
        top_seconds = soprano.shape[-1] / SR
        top_melody = chroma_from_midi(score, mode="melody", duration=top_seconds, argmax=True)
        assert chroma_similarity(chroma_from_audio(soprano, SR), top_melody)[0] > 0.75
        assert chroma_similarity(chroma_from_audio(soprano, SR, argmax=True), top_melody)[0] > 0.75

"""The transcriber's additive-synthesis instruments (``notewave.bridge.transcription.synth``) and the
``synth`` share of the training medleys, on a real JSB chorale and the real drums of the shipped
Freedoom example: partials where the timbre puts them, no aliasing, the envelope's length, random yet
seeded timbres, the overdrive's upper partials and intermodulation, labels unchanged, drums still
rendered by FluidSynth, and the shipped transcriber hearing the chorale's notes in the synthetic
instruments."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest

from notewave.bridge.roundtrip import score_notes
from notewave.bridge.soundfont import list_soundfonts
from notewave.bridge.transcription.augment import Augmentation
from notewave.bridge.transcription.data import MedleyPool, load_piece
from notewave.bridge.transcription.model import TranscriberConfig
from notewave.bridge.transcription.synth import overdrive, random_timbre, synthesize, synthesize_note
from notewave.cli.bridge import _augmentation, add_train_transcriber_cli
from notewave.errors import ConfigError
from notewave.paths import DATA_DIR, JSB_MIDI_DIR

FONT = ([p for p in list_soundfonts() if p.name == "TimGM6mb.sf2"] or list_soundfonts() or [None])[0]
needs_synth = pytest.mark.skipif(FONT is None, reason="no SoundFont installed")
RATE = 16000


def _spectrum(wav: np.ndarray) -> np.ndarray:
    """Magnitude spectrum of the first second (1 Hz bins)."""
    return np.abs(np.fft.rfft(wav[:RATE] * np.hanning(RATE)))


def test_partials_follow_the_timbre_and_stay_below_nyquist() -> None:
    rng = np.random.default_rng(0)
    timbre = random_timbre(rng)
    timbre = type(timbre)(**{**timbre.__dict__, "inharmonicity": 0.0, "vibrato_cents": 0.0, "noise": 0.0})
    wav = synthesize_note(57, 127, 1.5, timbre, RATE, rng)  # A3, 220 Hz
    assert len(wav) == int((1.5 + timbre.release_s) * RATE)
    mag = _spectrum(wav)
    for h in range(1, 6):
        assert np.argmax(mag[h * 220 - 30 : h * 220 + 30]) == 30  # partial h at h x 220 Hz
    off = np.concatenate([mag[h * 220 + 60 : (h + 1) * 220 - 60] for h in range(1, 6)])
    assert off.max() < 0.01 * mag.max()  # nothing between the partials
    stiff = type(timbre)(**{**timbre.__dict__, "inharmonicity": 4e-4})
    mag = _spectrum(synthesize_note(57, 127, 1.5, stiff, RATE, rng))
    expected = 10 * 220 * np.sqrt(1 + 4e-4 * 100)  # partial 10 stretched to 2244.6 Hz
    assert abs(np.argmax(mag[2150:2350]) + 2150 - expected) <= 2
    high = synthesize_note(105, 127, 1.0, timbre, RATE, rng)  # A7, 3520 Hz: partials 1 and 2 only
    mag = _spectrum(high)
    assert mag[7300:].max() < 1e-3 * mag.max()


def test_timbres_are_random_but_seeded_and_the_envelope_ends() -> None:
    a, b, c = (random_timbre(np.random.default_rng(s)) for s in (3, 3, 4))
    assert np.array_equal(a.partials, b.partials) and not np.array_equal(a.partials, c.partials)
    fundamentals = [random_timbre(np.random.default_rng(s)).partials[0] for s in range(40)]
    assert min(fundamentals) < 0.5 and max(fundamentals) == 1.0  # weak fundamentals are drawn too
    drives = [random_timbre(np.random.default_rng(s)).drive for s in range(100)]
    assert 20 < sum(d > 0 for d in drives) < 50 and min(d for d in drives if d > 0) >= 2.0
    notes = np.array([[0.2, 0.7, 60, 100], [1.0, 1.2, 64, 40]])
    a, c = (dataclasses.replace(t, drive=0.0) for t in (a, c))  # clean: overdrive's filter rings a little
    wav = synthesize(notes, np.array([0, 1]), [a, c], RATE, np.random.default_rng(0))
    assert len(wav) == int(1.0 * RATE) + int((0.2 + c.release_s) * RATE)  # to the last note's release
    assert np.abs(wav[: int(0.2 * RATE)]).max() == 0  # silence before the first onset
    gap = wav[int((0.7 + a.release_s) * RATE) + 2 : int(1.0 * RATE)]
    assert np.abs(gap).max() == 0  # the first note has ended by its release


def _band_db(mag: np.ndarray, hz: float, width: int = 2) -> float:
    """Level in dB of the strongest bin within ``width`` Hz of ``hz``, relative to the spectrum's peak."""
    return float(20 * np.log10(mag[int(round(hz)) - width : int(round(hz)) + width + 1].max() / mag.max()))


def test_overdrive_adds_upper_partials_and_intermodulation_below_nyquist() -> None:
    clean = dataclasses.replace(
        random_timbre(np.random.default_rng(1)), vibrato_cents=0.0, noise=0.0, inharmonicity=0.0, drive=0.0
    )
    fifth = np.array([[0.0, 1.5, 45, 100], [0.0, 1.5, 52, 100]])  # A2 110 Hz + E3 164.8 Hz, one voice
    spectra, peaks = {}, {}
    for drive in (0.0, 20.0):
        wav = synthesize(
            fifth, np.zeros(2, int), [dataclasses.replace(clean, drive=drive)], RATE, np.random.default_rng(0)
        )
        spectra[drive], peaks[drive] = _spectrum(wav), float(np.abs(wav).max())
    assert abs(peaks[20.0] / peaks[0.0] - 1) < 0.15  # the peak level is kept
    difference = 110 * 2 ** (7 / 12) - 110  # 54.8 Hz: a difference tone only the waveshaper makes
    assert _band_db(spectra[0.0], difference) < -80 and _band_db(spectra[20.0], difference) > -40
    high = {drive: np.sum(mag[2000:] ** 2) / np.sum(mag**2) for drive, mag in spectra.items()}
    assert high[20.0] > 3 * high[0.0]  # a larger share of the energy above 2 kHz
    assert _band_db(spectra[20.0], 7800, 200) < -50  # no aliasing, nothing near Nyquist
    wav = synthesize_note(57, 127, 1.0, clean, RATE, np.random.default_rng(0))
    np.testing.assert_array_equal(overdrive(wav, 0.0, RATE), wav)  # drive 0: untouched
    odd = _spectrum(overdrive(wav, 10.0, RATE))
    off = np.concatenate([odd[h * 220 + 60 : (h + 1) * 220 - 60] for h in range(1, 12)])
    assert off.max() < 0.01 * odd.max()  # one note: still only harmonics of 220 Hz


@needs_synth
def test_synth_medleys_keep_labels_and_drums_and_the_transcriber_hears_them() -> None:
    from notewave.bridge.transcription.transcribe import transcribe

    cfg = TranscriberConfig()
    chorale = load_piece(JSB_MIDI_DIR / "test" / "jsb_test_001.mid", drums=True)
    band = load_piece(DATA_DIR / "examples" / "freedoom2_D_COUNT2.mid", drums=True)
    pad = cfg.n_fft // 2
    out = {}
    for synth in (0.0, 1.0):
        pool = MedleyPool([chorale], cfg, [FONT], 1, excerpt_seconds=20.0, mix=Augmentation(synth=synth))
        wav, roll, notes = pool.render(np.random.default_rng(0), [chorale], augment=False)
        out[synth] = (wav[pad:-pad], notes)
    np.testing.assert_array_equal(out[0.0][1], out[1.0][1])  # the same labels ...
    n = min(len(out[0.0][0]), len(out[1.0][0]))
    assert np.abs(out[0.0][0][:n] - out[1.0][0][:n]).mean() > 0.3 * np.abs(out[0.0][0][:n]).mean()
    wav, notes = out[1.0]
    scores = score_notes(notes, transcribe(wav[None], cfg.sample_rate))
    assert scores.f1 > 0.7, scores  # ... in instruments no SoundFont has, still heard as those notes
    drums = band[band[:, 4] < 0]
    pool = MedleyPool([drums], cfg, [FONT], 1, excerpt_seconds=8.0, mix=Augmentation(synth=1.0))
    wav, roll, notes = pool.render(np.random.default_rng(0), [drums], augment=False)
    assert len(notes) == 0 and np.sqrt(np.mean(wav**2)) > 0.05  # drums alone: FluidSynth, never labels


def test_cli_synth_option() -> None:
    parser = argparse.ArgumentParser()
    add_train_transcriber_cli(parser.add_subparsers(dest="model"))
    base = ["transcriber", "--midi", "a", "--out", "r"]
    assert _augmentation(parser.parse_args([*base, "--synth", "0.3"])) == Augmentation(synth=0.3)
    with pytest.raises(ConfigError, match="--synth must be in"):
        _augmentation(parser.parse_args([*base, "--synth", "2"]))

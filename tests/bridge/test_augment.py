"""Augmented training data of the transcriber (``notewave.bridge.transcription.augment`` and the medleys
of ``data.py``) on real MIDI (a held-out JSB chorale, the drums of the shipped Freedoom example) and real
FluidSynth renders: drums are audio but never labels, seeds, gain and noise ranges, the EQ biquads,
SoundFont hold-out, and a tiny training run with ``init`` and the new CLI options."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import sosfreqz

from notewave.bridge.soundfont import list_soundfonts
from notewave.bridge.transcription.augment import (
    Augmentation,
    augment_crop,
    biquad,
    installed_soundfonts,
    is_soundfont,
    training_soundfonts,
)
from notewave.bridge.transcription.data import MedleyPool, load_piece, make_medley, piano_roll
from notewave.bridge.transcription.model import MIN_MIDI, Transcriber, TranscriberConfig
from notewave.bridge.transcription.train import train_transcriber
from notewave.cli.bridge import add_train_transcriber_cli
from notewave.core.midi import load_score
from notewave.errors import ConfigError
from notewave.paths import DATA_DIR, JSB_MIDI_DIR

CHORALE = JSB_MIDI_DIR / "test" / "jsb_test_000.mid"
BAND = DATA_DIR / "examples" / "freedoom2_D_COUNT2.mid"
FONT = ([p for p in list_soundfonts() if p.name == "TimGM6mb.sf2"] or list_soundfonts() or [None])[0]
QUIET = Augmentation(reverb=0.0, chorus=0.0, eq=0.0)  # drums, level, gain and noise only
needs_synth = pytest.mark.skipif(FONT is None, reason="no SoundFont installed")


def _tiny() -> TranscriberConfig:
    return TranscriberConfig(conv_channels=4, d_model=16, rnn_hidden=8)


@pytest.fixture(scope="module")
def with_drums(tmp_path_factory) -> Path:
    """The chorale (pitched, 38..77) with the first 8 s of the Freedoom example's drum track under it."""
    chorale = load_score(CHORALE).to("second")
    band = load_score(BAND).to("second").clip(0.0, 8.0, clip_end=False)
    chorale.tracks.append(next(t for t in band.tracks if t.is_drum))
    path = tmp_path_factory.mktemp("midi") / "chorale_drums.mid"
    chorale.to("tick").dump_midi(str(path))
    return path


def test_drum_notes_are_rendered_never_labelled(with_drums: Path) -> None:
    piece, pitched = load_piece(with_drums, drums=True), load_piece(CHORALE)
    drums = piece[piece[:, 4] < 0]
    assert len(drums) > 30 and 35 in drums[:, 2] and pitched[:, 2].min() > 35  # kick 35: a drum-only key
    assert len(load_piece(with_drums)) == len(pitched)  # drums=False: pitched notes only
    seed = 3
    score, labels = make_medley(
        [piece], np.random.default_rng(seed), excerpt_seconds=60, augment=False, mix=QUIET
    )
    _, plain = make_medley([pitched], np.random.default_rng(seed), excerpt_seconds=60, augment=False)
    (kit,) = [t for t in score.tracks if t.is_drum]
    assert kit.note_num() == len(drums)  # every drum note is in the rendered score
    np.testing.assert_array_equal(labels, plain)  # ... and none in the labels
    assert len(labels) == len(pitched) and 35 not in labels[:, 2]


@needs_synth
def test_drum_kits_are_drawn_per_medley_and_sound_different(with_drums: Path) -> None:
    """``drum_kits`` puts the drum track on one of the listed GM kits per medley (both drawn over a few
    seeds, the labels unchanged), and TimGM6mb renders its TR-808 kit unlike its standard kit."""
    from notewave.bridge.render import render_midi

    piece = load_piece(with_drums, drums=True)
    mix = Augmentation(reverb=0.0, chorus=0.0, eq=0.0, drum_kits=(0, 25))
    drawn, scores = set(), {}
    for seed in range(8):
        score, labels = make_medley([piece], np.random.default_rng(seed), excerpt_seconds=60, mix=mix)
        (kit,) = [t for t in score.tracks if t.is_drum]
        drawn.add(kit.program)
        scores.setdefault(kit.program, score)
        assert 35 not in labels[:, 2]
    assert drawn == {0, 25}
    one, _ = make_medley([piece], np.random.default_rng(0), excerpt_seconds=60, augment=False, mix=mix)
    assert [t.program for t in one.tracks if t.is_drum] == [0]  # augment=False: the first kit
    drums_only = {}
    for program, score in scores.items():
        score.tracks = [t for t in score.tracks if t.is_drum]
        drums_only[program] = render_midi(score, 16000, soundfont=FONT)[0][0]
    n = min(len(w) for w in drums_only.values())
    a, b = drums_only[0][:n], drums_only[25][:n]
    assert np.abs(a).max() > 0.01 and np.abs(b).max() > 0.01
    assert np.abs(a - b).mean() > 0.2 * np.abs(a).mean()


@needs_synth
def test_label_roll_has_no_drum_pitches_and_drums_alone_are_loud(with_drums: Path) -> None:
    cfg = TranscriberConfig()
    piece = load_piece(with_drums, drums=True)
    pool = MedleyPool([piece], cfg, [FONT], 1, excerpt_seconds=8.0, mix=QUIET)
    wav, roll, notes = pool.render(np.random.default_rng(0), [piece], augment=False)
    assert len(notes) and roll["frame"].sum() > 0
    for head in roll:
        assert roll[head][:, 35 - MIN_MIDI].max() == 0  # the kick drum's key is never a label
    expected = piano_roll(notes, roll["frame"].shape[0], cfg.frames_per_second)
    for head in roll:
        np.testing.assert_array_equal(roll[head], expected[head])
    drums_only = piece[piece[:, 4] < 0]
    wav, roll, notes = pool.render(np.random.default_rng(0), [drums_only], augment=False)
    assert len(notes) == 0 and all(r.max() == 0 for r in roll.values())
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    assert rms > 0.5 * 10 ** (QUIET.level_db / 20)  # the drums are heard (level set to -16 dBFS)


@needs_synth
def test_same_seed_same_audio_other_seed_other_audio(with_drums: Path) -> None:
    piece = load_piece(with_drums, drums=True)
    pool = MedleyPool(
        [piece, load_piece(CHORALE, drums=True)], TranscriberConfig(), [FONT], 2, excerpt_seconds=6.0
    )
    pool.mix = Augmentation()

    def medley(seed: int) -> np.ndarray:
        return pool.render(np.random.default_rng(seed))[0]

    a, b, c = medley(7), medley(7), medley(8)
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or np.abs(a - c).max() > 0.05
    pool.items = [pool.render(np.random.default_rng(s)) for s in (1, 2)]
    x, _ = pool.batch(np.random.default_rng(5), 3, 40)
    y, _ = pool.batch(np.random.default_rng(5), 3, 40)
    z, _ = pool.batch(np.random.default_rng(6), 3, 40)
    assert x.shape == (3, 39 * 512 + 2048) and float(x.abs().max()) <= 1.0
    assert bool((x == y).all()) and not bool((x == z).all())


@needs_synth
def test_gain_and_noise_stay_in_range() -> None:
    from notewave.bridge.render import render_midi

    spec = Augmentation()
    score = load_score(CHORALE).to("second").clip(0.0, 4.0, clip_end=False)
    crop = render_midi(score, 16000, soundfont=FONT, normalize="loudness")[0][0].astype(np.float64)
    reference = float(np.sqrt(np.mean(crop**2)))
    gains, snrs = [], []
    for seed in range(40):
        out, info = augment_crop(crop, np.random.default_rng(seed), reference, spec)
        assert out.dtype == np.float32 and out.shape == crop.shape and np.abs(out).max() <= 1.0
        gain = 10 ** (info["gain_db"] / 20)
        noise = out.astype(np.float64) - gain * crop
        snr = 10 * np.log10((reference * gain) ** 2 / np.mean(noise**2))
        level = 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2)) / reference)
        assert -12.0 <= info["gain_db"] <= 0.0 and 20.0 <= info["snr_db"] <= 40.0
        assert abs(snr - info["snr_db"]) < 0.1 and -12.1 < level < 0.1, (seed, snr, level)
        gains.append(info["gain_db"])
        snrs.append(snr)
    assert min(gains) < -9 and max(gains) > -3 and min(snrs) < 24 and max(snrs) > 36  # the ranges are used


def test_eq_biquads_have_the_asked_gains() -> None:
    rate = 16000

    def db_at(sos: np.ndarray, hz: float) -> float:
        _, h = sosfreqz(sos, worN=[hz], fs=rate)
        return float(20 * np.log10(np.abs(h[0])))

    low = biquad("lowshelf", 200.0, 6.0, 1.0, rate)
    assert db_at(low, 20.0) == pytest.approx(6.0, abs=0.2) and abs(db_at(low, 7000.0)) < 0.2
    high = biquad("highshelf", 3000.0, -6.0, 1.0, rate)
    assert db_at(high, 7900.0) == pytest.approx(-6.0, abs=0.3) and abs(db_at(high, 50.0)) < 0.2
    peak = biquad("peaking", 1000.0, 9.0, 1.5, rate)
    assert db_at(peak, 1000.0) == pytest.approx(9.0, abs=0.05) and abs(db_at(peak, 60.0)) < 0.3
    with pytest.raises(ConfigError):
        biquad("peaking", 9000.0, 3.0, 1.0, rate)


def test_held_out_soundfont_is_never_a_training_soundfont() -> None:
    installed = installed_soundfonts()
    assert len({p.resolve() for p in installed}) == len(installed)  # links listed once
    if len(installed) < 2:
        pytest.skip("fewer than two SoundFonts installed")
    held = installed[-1]
    fonts = training_soundfonts(holdout=held.stem)
    assert fonts and not any(is_soundfont(f, held) for f in fonts)
    assert set(fonts) == {p for p in installed if p.resolve() != held.resolve() and p.name != held.name}
    with pytest.raises(ConfigError, match="held out"):
        training_soundfonts([held], holdout=held.name)


@needs_synth
def test_tiny_augmented_run_from_init_and_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for sub, files in (("train", [CHORALE, BAND]), ("valid", [JSB_MIDI_DIR / "test" / "jsb_test_001.mid"])):
        (data / sub).mkdir(parents=True)
        for f in files:
            shutil.copy(f, data / sub / f.name)
    opts = dict(batch_size=2, pool_size=1, refresh_every=2, eval_every=2, val_pieces=1, soundfonts=[FONT])
    first = train_transcriber([data], tmp_path / "a", steps=1, config=_tiny(), **opts)
    assert first["augment"]["drums"] and first["train_pieces"] == 2
    start = Transcriber.from_pretrained(tmp_path / "a" / "last")
    second = train_transcriber([data], tmp_path / "b", steps=2, init=tmp_path / "a" / "last", **opts)
    assert second["steps"] == 2 and np.isfinite(second["best_val_loss"])
    tuned = Transcriber.from_pretrained(tmp_path / "b" / "last")
    assert tuned.config == _tiny()  # sizes and feature standardisation from the init checkpoint
    assert bool((tuned.features.feature_mean == start.features.feature_mean).all())
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["init"] == str(tmp_path / "a" / "last")
    with pytest.raises(ConfigError):
        train_transcriber(
            [data], tmp_path / "c", steps=1, init=tmp_path / "a" / "last", config=_tiny(), **opts
        )
    with pytest.raises(ConfigError, match="held out"):
        train_transcriber(
            [data], tmp_path / "c", steps=1, **{**opts, "soundfonts": [FONT]}, holdout_soundfont=FONT
        )
    parser = argparse.ArgumentParser()
    add_train_transcriber_cli(parser.add_subparsers(dest="model"))
    args = parser.parse_args(["transcriber", "--midi", "a", "--out", "r"])
    assert args.augment and args.holdout_soundfont == "MuseScore_General_Lite.sf3" and args.init is None
    args = parser.parse_args(
        ["transcriber", "--midi", "a", "--out", "r", "--no-augment", "--holdout-soundfont", "X.sf2"]
        + ["--init", "ck", "--soundfont", "A.sf2", "--soundfont", "B.sf2"]
    )
    assert not args.augment and args.holdout_soundfont == "X.sf2" and args.init == "ck"
    assert args.soundfont == ["A.sf2", "B.sf2"]


def test_own_programs_ensemble_family_and_the_cli_options(freedoom_piece) -> None:
    """Freedoom's E1M5 (strings, harp, timpani): with source_programs 1 every voice outside the held-out
    family keeps its own GM program, its string-ensemble voices only with ``ensemble``; the CLI options
    build that Augmentation and refuse bad values in one line."""
    from notewave.cli.bridge import _augmentation

    piece = load_piece(freedoom_piece("freedoom1_D_E1M5"), drums=True)
    own = {int(p) for p in piece[piece[:, 4] >= 0][:, 5]}
    assert own & set(range(48, 56)), "the example's voices include the ensemble family"
    programs = {}
    for ensemble in (False, True):
        mix = Augmentation(source_programs=1.0, ensemble=ensemble)
        score, _ = make_medley([piece], np.random.default_rng(0), excerpt_seconds=10_000, mix=mix)
        programs[ensemble] = {t.program for t in score.tracks if not t.is_drum}
    assert programs[True] == own and not programs[False] & set(range(48, 56))
    assert programs[False] >= own - set(range(48, 56))
    parser = argparse.ArgumentParser()
    add_train_transcriber_cli(parser.add_subparsers(dest="model"))
    base = ["transcriber", "--midi", "a", "--out", "r"]
    mix = _augmentation(
        parser.parse_args([*base, "--source-programs", "0.7", "--drum-velocity", "0.8,1.4", "--ensemble"])
    )
    assert mix == Augmentation(source_programs=0.7, drum_velocity=(0.8, 1.4), ensemble=True)
    kits = _augmentation(parser.parse_args([*base, "--drum-kits", "0,8,25"]))
    assert kits == Augmentation(drum_kits=(0, 8, 25))
    assert _augmentation(parser.parse_args([*base, "--no-augment"])) is False
    assert _augmentation(parser.parse_args(base)) == Augmentation()
    for bad in (
        ["--source-programs", "1.5"],
        ["--drum-velocity", "2"],
        ["--drum-velocity", "1.2,0.5"],
        ["--drum-kits", "0,x"],
        ["--drum-kits", "200"],
    ):
        with pytest.raises(ConfigError, match="source-programs|drum-velocity|drum-kits"):
            _augmentation(parser.parse_args([*base, *bad]))

"""TiMidity++ renders (``notewave.bridge.timidity``) of a real held-out JSB chorale and a real multi-track
Freedoom piece with drums: level, timing and length against the MIDI, chroma against the notes, the
generated config that keeps every note on Freepats patches, and the errors (no mocks: a missing binary
is a PATH without it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from notewave.bridge.chroma import chroma_from_audio, chroma_from_midi, chroma_similarity
from notewave.bridge.timidity import DEFAULT_CONFIG, _filled_config, _instruments, render_timidity
from notewave.core.midi import load_score
from notewave.errors import ConfigError, MidiError, RenderError
from notewave.paths import DATA_DIR, JSB_MIDI_DIR

RATE = 22050
SECONDS = 5.0
CHORALE = JSB_MIDI_DIR / "test" / "jsb_test_000.mid"
BAND = DATA_DIR / "examples" / "freedoom2_D_COUNT2.mid"  # 12 tracks, one of them drums
needs_timidity = pytest.mark.skipif(
    shutil.which("timidity") is None or not DEFAULT_CONFIG.is_file(), reason="timidity/freepats not installed"
)


def _excerpt(path: Path, seconds: float):
    return load_score(path).to("second").clip(0.0, seconds, clip_end=False)


def _last_off(score) -> float:
    notes = [t.notes.numpy() for t in score.tracks if len(t.notes)]
    return max(float((n["time"] + n["duration"]).max()) for n in notes)


@pytest.fixture(scope="module")
def chorale():
    score = _excerpt(CHORALE, SECONDS).shift_time(0.75)  # leading silence must be kept
    wav, rate = render_timidity(score, RATE)
    return score, wav, rate


@needs_timidity
def test_chorale_render_is_loud_mono_float32_and_as_long_as_the_midi(chorale) -> None:
    score, wav, rate = chorale
    assert rate == RATE and wav.dtype == np.float32 and wav.ndim == 2 and wav.shape[0] == 1
    last_off = _last_off(score)
    assert wav.shape[1] == round((last_off + 1.0) * RATE)  # default tail 1 s
    rms = float(np.sqrt(np.mean(np.square(wav))))
    assert rms == pytest.approx(0.1, rel=0.05)  # loudness normalisation: -20 dBFS RMS
    assert float(np.abs(wav).max()) <= 0.99
    # the music itself spans the MIDI: sound starts at the first onset and lasts to the last note-off
    level = np.sqrt(np.convolve(np.square(wav[0]), np.ones(441) / 441, mode="same"))  # 20 ms RMS
    loud = np.flatnonzero(level > 0.1 * level.max()) / RATE
    first_on = min(float(t.notes.numpy()["time"].min()) for t in score.tracks if len(t.notes))
    assert abs(loud[0] - first_on) < 0.05
    assert last_off - 0.3 < loud[-1] < last_off + 1.0


@needs_timidity
def test_chorale_render_chroma_follows_the_notes(chorale) -> None:
    score, wav, rate = chorale
    audio = chroma_from_audio(wav, rate, frame_rate=25)
    notes = chroma_from_midi(score, frame_rate=25, duration=wav.shape[1] / rate)
    other = chroma_from_midi(score.shift_pitch(6), frame_rate=25, duration=wav.shape[1] / rate)
    same, _ = chroma_similarity(audio, notes)
    tritone, _ = chroma_similarity(audio, other)
    assert same > 0.65 and same > tritone + 0.3, (same, tritone)


@needs_timidity
def test_renders_drums_and_is_deterministic_from_path_bytes_and_score(tmp_path: Path) -> None:
    band = _excerpt(BAND, 4.0)
    drums = band.copy()
    drums.tracks = [t for t in drums.tracks if t.is_drum]
    assert drums.tracks and drums.note_num() > 0
    kit, _ = render_timidity(drums, RATE, normalize=None)
    assert float(np.sqrt(np.mean(np.square(kit)))) > 1e-3  # drum notes are heard
    path = tmp_path / "band.mid"
    band.to("tick").dump_midi(str(path))
    a, _ = render_timidity(path, RATE, tail_seconds=0.5)
    b, _ = render_timidity(path.read_bytes(), RATE, tail_seconds=0.5)
    c, _ = render_timidity(band, RATE, tail_seconds=0.5)
    assert a.shape == (1, round((_last_off(band) + 0.5) * RATE))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@needs_timidity
def test_generated_config_keeps_every_program_and_drum_on_freepats_patches(tmp_path: Path) -> None:
    own_programs, own_drums = _instruments(DEFAULT_CONFIG)
    assert 30 < len(own_programs) < 128 and own_drums  # Freepats lacks programs: they must be filled
    cfg = tmp_path / "filled.cfg"
    cfg.write_text(_filled_config(DEFAULT_CONFIG))
    programs, drums = _instruments(cfg)
    assert sorted(programs) == list(range(128)) and sorted(drums) == list(range(128))
    assert all(".pat" in p and "%font" not in p for p in [*programs.values(), *drums.values()])
    assert programs[50].startswith("Tone_000/04")  # synth strings 2 (missing) -> a strings patch
    assert programs[0] == own_programs[0]


def test_missing_timidity_or_freepats_is_one_line_naming_apt_get(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no timidity on the PATH
    with pytest.raises(RenderError, match=r"apt-get install timidity freepats") as info:
        render_timidity(CHORALE)
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    if shutil.which("timidity") is not None:
        with pytest.raises(RenderError, match="not found"):
            render_timidity(CHORALE, config=tmp_path / "nowhere.cfg")


@needs_timidity
def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(RenderError):
        render_timidity(CHORALE, sample_rate=100)
    with pytest.raises(ConfigError):
        render_timidity(CHORALE, normalize="loud")
    with pytest.raises(RenderError, match="max_seconds"):
        render_timidity(CHORALE, max_seconds=2.0)
    with pytest.raises(MidiError):
        render_timidity(tmp_path / "missing.mid")
    broken = tmp_path / "broken.cfg"
    broken.write_text("# no instruments\n")
    with pytest.raises(RenderError, match="no bank-0 instruments"):
        render_timidity(CHORALE, config=broken)

"""Real FluidSynth renders of small symusic scores (no mocks): timing, pitch, channels, errors, files."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from symusic import ControlChange, Note, Pedal, PitchBend, Score, Tempo, Track

from notewave.bridge import (
    find_soundfont,
    list_soundfonts,
    render,
    render_file,
    render_folder,
    render_midi,
    write_wav,
)
from notewave.bridge import soundfont as soundfont_module
from notewave.bridge.render import _assign_channels
from notewave.cli.bridge import add_render_cli
from notewave.errors import AudioError, ConfigError, MidiError, NotewaveError, RenderError, SoundfontError

SR = 32000
TPQ = 480


def _small_soundfont() -> Path | None:
    """TimGM6mb (6 MB, loads in ~50 ms) when installed, else whatever find_soundfont picks."""
    fonts = list_soundfonts()
    small = [p for p in fonts if p.name == "TimGM6mb.sf2"]
    return (small or fonts or [None])[0]


def _fluidsynth_ok() -> bool:
    try:
        import fluidsynth  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


SF = _small_soundfont()
needs_synth = pytest.mark.skipif(
    SF is None or not _fluidsynth_ok(), reason="FluidSynth or a SoundFont is not installed"
)


def make_score(notes, program=0, drum=False, tempo=120.0) -> Score:
    """One-track Score; ``notes`` are (start tick, duration ticks, pitch, velocity) at 480 tpq."""
    score = Score(TPQ)
    score.tempos.append(Tempo(0, tempo))
    track = Track(name="t", program=program, is_drum=drum)
    for start, duration, pitch, velocity in notes:
        track.notes.append(Note(start, duration, pitch, velocity))
    score.tracks.append(track)
    return score


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def peak_hz(wav: np.ndarray, sr: int) -> float:
    x = wav[0] * np.hanning(wav.shape[1])
    return float(np.fft.rfftfreq(wav.shape[1], 1 / sr)[np.abs(np.fft.rfft(x)).argmax()])


def spectrum(wav: np.ndarray) -> np.ndarray:
    mag = np.abs(np.fft.rfft(wav[0] * np.hanning(wav.shape[1])))
    return mag / np.linalg.norm(mag)


SCALE = [(i * 240, 240, p, 100) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]  # 8 eighths


def render_sf(midi, **kw):
    return render_midi(midi, soundfont=SF, **kw)


# --- SoundFont lookup -------------------------------------------------------------------


def test_find_soundfont_explicit_path(tmp_path):
    font = tmp_path / "my.sf2"
    font.write_bytes(b"RIFF")
    assert find_soundfont(font) == font
    with pytest.raises(SoundfontError, match="nope.sf2"):
        find_soundfont(tmp_path / "nope.sf2")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(SoundfontError, match="x.txt"):
        find_soundfont(tmp_path / "x.txt")


def test_find_soundfont_env_then_system_preference(tmp_path, monkeypatch):
    system = tmp_path / "sf2"
    system.mkdir()
    for name in ("a.sf2", "TimGM6mb.sf2"):
        (system / name).write_bytes(b"RIFF")
    monkeypatch.setattr(soundfont_module, "SYSTEM_SOUNDFONT_DIRS", (system,))
    monkeypatch.delenv("NOTEWAVE_SOUNDFONT", raising=False)
    assert find_soundfont() == system / "TimGM6mb.sf2"
    (system / "FluidR3_GM.sf2").write_bytes(b"RIFF")
    assert find_soundfont() == system / "FluidR3_GM.sf2"
    names = [p.name for p in list_soundfonts()]
    assert names[:3] == ["FluidR3_GM.sf2", "TimGM6mb.sf2", "a.sf2"]
    env_font = tmp_path / "env.sf2"
    env_font.write_bytes(b"RIFF")
    monkeypatch.setenv("NOTEWAVE_SOUNDFONT", str(env_font))
    assert find_soundfont() == env_font and list_soundfonts()[0] == env_font
    monkeypatch.setenv("NOTEWAVE_SOUNDFONT", str(tmp_path / "gone.sf2"))
    with pytest.raises(SoundfontError, match="NOTEWAVE_SOUNDFONT.*gone.sf2"):
        find_soundfont()


def test_find_soundfont_nothing_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(soundfont_module, "SYSTEM_SOUNDFONT_DIRS", (tmp_path / "none",))
    monkeypatch.delenv("NOTEWAVE_SOUNDFONT", raising=False)
    if soundfont_module._pretty_midi_soundfont() is not None:
        pytest.skip("pretty_midi's bundled SoundFont is installed")
    with pytest.raises(SoundfontError, match="apt-get install timgm6mb-soundfont"):
        find_soundfont()
    assert list_soundfonts() == []


# --- rendering ------------------------------------------------------------------------


@needs_synth
def test_shape_dtype_and_exact_length():
    wav, sr = render_sf(make_score(SCALE))
    assert sr == SR and wav.dtype == np.float32 and wav.shape == (1, round((2.0 + 1.0) * SR))
    wav, sr = render_sf(make_score(SCALE), sample_rate=22050, tail_seconds=0.37, stereo=True)
    assert sr == 22050 and wav.shape == (2, round((2.0 + 0.37) * 22050))
    assert np.abs(wav).max() <= 1.0
    assert render is render_midi
    default, _ = render_midi(make_score(SCALE[:2]))  # SoundFont from find_soundfont()
    assert default.shape == (1, round(1.5 * SR)) and rms(default) > 1e-3


@needs_synth
def test_note_onset_lands_on_its_sample_within_one_block():
    wav, sr = render_sf(make_score([(960, 480, 69, 100)], program=19), tail_seconds=0.5)  # onset at 1.0 s
    loud = np.flatnonzero(np.abs(wav[0]) > 10 / 32768)
    assert 0 <= loud[0] - sr < 64 + 32  # one 64-sample FluidSynth block, plus a short attack
    assert np.abs(wav[0, :sr]).max() <= 2 / 32768  # only FluidSynth's +-1 LSB dither before it


@needs_synth
def test_inputs_path_bytes_score_agree_and_mono_is_channel_mean(tmp_path):
    score = make_score(SCALE[:3])
    path = tmp_path / "s.mid"
    score.dump_midi(str(path))
    a, _ = render_sf(score)
    b, _ = render_sf(path.read_bytes())
    c, _ = render_sf(str(path))
    stereo, _ = render_sf(path, stereo=True)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert stereo.shape[0] == 2 and np.allclose(stereo.mean(axis=0), a[0], atol=1e-6)


@needs_synth
def test_energy_during_notes_and_silence_after_release():
    wav, sr = render_sf(make_score([(0, 480, 60, 127)]), tail_seconds=4.0, gain=1.0)
    during, late = wav[0, : sr // 2], wav[0, 3 * sr :]
    assert rms(during) > 1e-2
    assert 20 * np.log10(rms(late) / rms(during)) < -60


@needs_synth
def test_a4_spectral_peak_and_pitch_bend():
    wav, sr = render_sf(make_score([(0, 1920, 69, 100)]), tail_seconds=0.0)
    assert abs(peak_hz(wav[:, : 2 * sr], sr) - 440.0) < 4.0
    bent = make_score([(0, 1920, 69, 100)], program=73)  # flute: strong fundamental
    bent.tracks[0].pitch_bends.append(PitchBend(0, 4096))  # +1 semitone with the default 2-semitone range
    wav, sr = render_sf(bent, tail_seconds=0.0)
    assert abs(peak_hz(wav[:, : 2 * sr], sr) - 440.0 * 2 ** (1 / 12)) < 5.0


@needs_synth
def test_program_change_alters_spectrum():
    piano, _ = render_sf(make_score([(0, 960, 69, 100)], program=0))
    organ, _ = render_sf(make_score([(0, 960, 69, 100)], program=19))
    assert float(spectrum(piano) @ spectrum(organ)) < 0.8


@needs_synth
def test_tempo_halved_doubles_duration_and_mid_piece_change():
    fast, _ = render_sf(make_score(SCALE, tempo=120), tail_seconds=0.0)
    slow, _ = render_sf(make_score(SCALE, tempo=60), tail_seconds=0.0)
    assert slow.shape[1] == 2 * fast.shape[1] == 2 * 2 * SR
    score = make_score([(i * 480, 480, 60 + i, 100) for i in range(4)], tempo=120)
    score.tempos.append(Tempo(960, 60))  # two beats at 0.5 s, then two at 1 s
    wav, _ = render_sf(score, tail_seconds=0.0)
    assert wav.shape[1] == round(3.0 * SR)
    assert rms(wav[0, int(2.2 * SR) : int(2.8 * SR)]) > 1e-3  # last note sounds at the slow tempo


@needs_synth
def test_drum_track_sounds_on_channel_10():
    wav, sr = render_sf(make_score([(0, 60, 36, 110), (240, 60, 38, 110), (480, 0, 42, 110)], drum=True))
    assert wav.shape[1] == round((480 / TPQ * 0.5 + 1.0) * sr)
    assert rms(wav[0, : sr // 2]) > 5e-3
    melodic, _ = render_sf(make_score([(0, 60, 36, 110), (240, 60, 38, 110), (480, 0, 42, 110)]))
    assert float(spectrum(wav) @ spectrum(melodic)) < 0.8


@needs_synth
@pytest.mark.parametrize("as_controls", [False, True])
def test_sustain_pedal_holds_notes(as_controls):
    plain = make_score([(0, 240, 60, 100)])
    held = make_score([(0, 240, 60, 100)])
    if as_controls:
        held.tracks[0].controls.extend([ControlChange(0, 64, 127), ControlChange(1920, 64, 0)])
    else:
        held.tracks[0].pedals.append(Pedal(0, 1920))
    dry, sr = render_sf(plain, tail_seconds=2.0)
    wet, _ = render_sf(held, tail_seconds=2.0)
    window = slice(int(0.6 * sr), int(1.0 * sr))  # after the key is released, before the pedal is
    assert rms(wet[0, window]) > 10 * rms(dry[0, window])


@needs_synth
def test_overlapping_same_key_rings_until_last_note_off():
    organ = 19  # sustains at full level while the key is down
    score = make_score([(0, 3840, 60, 100), (960, 480, 60, 100)], program=organ)  # 0-4 s and 1-1.5 s
    wav, sr = render_sf(score, tail_seconds=0.0)
    alone, _ = render_sf(make_score([(960, 480, 60, 100)], program=organ), tail_seconds=2.5)
    late = slice(int(3.0 * sr), int(3.5 * sr))
    assert rms(wav[0, late]) > 1e-2 and rms(wav[0, late]) > 100 * rms(alone[0, late])


@needs_synth
def test_many_tracks_share_channels_by_program():
    score = Score(TPQ)
    score.tempos.append(Tempo(0, 120))
    for k in range(18):
        track = Track(name=f"t{k}", program=k * 4, is_drum=False)
        track.notes.append(Note(k * 20, 240, 48 + k, 90))
        score.tracks.append(track)
    drums = Track(name="d", program=0, is_drum=True)
    drums.notes.append(Note(0, 120, 36, 100))
    score.tracks.append(drums)
    channels = _assign_channels(list(score.tracks))
    assert channels[-1] == 9 and 9 not in channels[:-1] and set(channels[:-1]) <= set(range(16))
    assert len(set(channels[:-1])) == 15
    wav, sr = render_sf(score)
    assert rms(wav[0, : sr // 4]) > 1e-2


@needs_synth
def test_normalize_peak_and_loudness():
    wav, _ = render_sf(make_score(SCALE), normalize="peak")
    assert abs(float(np.abs(wav).max()) - 0.95) < 1e-5
    wav, _ = render_sf(make_score(SCALE), normalize="loudness")
    assert float(np.abs(wav).max()) <= 0.99 + 1e-6 and abs(20 * np.log10(rms(wav)) + 20.0) < 0.05
    hit, _ = render_sf(make_score([(0, 60, 38, 110)], drum=True), tail_seconds=3.0, normalize="loudness")
    assert abs(float(np.abs(hit).max()) - 0.99) < 1e-5 and 20 * np.log10(rms(hit)) < -20.5  # peak-limited


# --- errors ---------------------------------------------------------------------------


@needs_synth
def test_bad_midi_inputs_raise_midi_error(tmp_path):
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"this is not a midi file at all")
    with pytest.raises(MidiError, match="junk.mid"):
        render_sf(junk)
    with pytest.raises(MidiError, match="missing.mid"):
        render_sf(tmp_path / "missing.mid")
    with pytest.raises(MidiError):
        render_sf(b"RIFF\x00\x00garbage")
    with pytest.raises(MidiError, match="no notes"):
        render_sf(Score(TPQ))
    with pytest.raises(MidiError):
        render_sf(12345)


@needs_synth
def test_bad_options_raise(tmp_path):
    with pytest.raises(SoundfontError, match="absent.sf2"):
        render_midi(make_score(SCALE), soundfont=tmp_path / "absent.sf2")
    with pytest.raises(NotewaveError, match="1000"):
        render_sf(make_score(SCALE), sample_rate=1000)
    with pytest.raises(RenderError):
        render_sf(make_score(SCALE), sample_rate=200000)
    with pytest.raises(ConfigError):
        render_sf(make_score(SCALE), tail_seconds=-1)
    with pytest.raises(ConfigError):
        render_sf(make_score(SCALE), normalize="loud")
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(b"not a soundfont")
    with pytest.raises(SoundfontError, match="broken.sf2"):
        render_midi(make_score(SCALE), soundfont=broken)


def test_missing_fluidsynth_library_is_a_render_error(monkeypatch):
    if SF is None:
        pytest.skip("no SoundFont installed")
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # makes `import fluidsynth` raise ImportError
    with pytest.raises(RenderError, match="apt-get install fluidsynth libfluidsynth3"):
        render_sf(make_score(SCALE))


# --- files, folders, CLI --------------------------------------------------------------


def test_write_wav_is_atomic_and_readable(tmp_path):
    wav = (0.5 * np.sin(np.linspace(0, 200, 8000))).astype(np.float32)[None, :].repeat(2, axis=0)
    out = write_wav(tmp_path / "sub" / "a.wav", wav, 16000)
    assert out == tmp_path / "sub" / "a.wav" and os.listdir(tmp_path / "sub") == ["a.wav"]
    data, sr = soundfile.read(out, dtype="float32", always_2d=True)
    assert sr == 16000 and data.shape == (8000, 2) and np.abs(data.T - wav).max() < 1e-4
    assert soundfile.info(str(out)).subtype == "PCM_16"
    with pytest.raises(AudioError):
        write_wav(tmp_path / "bad.wav", np.full((1, 10), np.nan, dtype=np.float32), 16000)
    with pytest.raises(AudioError):
        write_wav(tmp_path / "bad.wav", np.zeros((1, 0), dtype=np.float32), 16000)
    assert not (tmp_path / "bad.wav").exists() and len(os.listdir(tmp_path)) == 1


@needs_synth
def test_render_file_and_folder(tmp_path):
    src = tmp_path / "midi"
    src.mkdir()
    make_score(SCALE).dump_midi(str(src / "scale.mid"))
    make_score([(0, 480, 69, 100)]).dump_midi(str(src / "a4.mid"))
    (src / "notes.txt").write_text("ignored")
    written = render_folder(src, tmp_path / "wav", soundfont=SF, sample_rate=16000, progress=False)
    assert written == [tmp_path / "wav" / "a4.wav", tmp_path / "wav" / "scale.wav"]
    assert soundfile.info(str(written[1])).frames == round(3.0 * 16000)
    assert sorted(os.listdir(tmp_path / "wav")) == ["a4.wav", "scale.wav"]
    single = render_file(src / "a4.mid", tmp_path / "one.wav", soundfont=SF, stereo=True)
    assert soundfile.info(str(single)).channels == 2
    with pytest.raises(MidiError, match="\\*.midi"):
        render_folder(src, tmp_path / "wav2", pattern="*.midi", soundfont=SF)


@needs_synth
def test_cli_render_file_and_folder(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="notewave")
    add_render_cli(parser.add_subparsers(dest="command"))
    make_score(SCALE).dump_midi(str(tmp_path / "x.mid"))
    args = parser.parse_args(
        ["render", str(tmp_path / "x.mid"), str(tmp_path / "x.wav"), "--sample-rate", "16000", "--stereo"]
        + ["--soundfont", str(SF), "--tail", "0.5", "--normalize", "peak"]
    )
    assert args.func(args) == 0
    info = soundfile.info(str(tmp_path / "x.wav"))
    assert (info.samplerate, info.channels, info.frames) == (16000, 2, round(2.5 * 16000))
    assert "x.wav" in capsys.readouterr().out
    args = parser.parse_args(["render", str(tmp_path), str(tmp_path / "out"), "--soundfont", str(SF)])
    assert args.func(args) == 0
    assert (tmp_path / "out" / "x.wav").is_file() and "out" in capsys.readouterr().out


# --- length cap -----------------------------------------------------------------------


def _chorale_with_stuck_note(tmp_path, seconds: float) -> Path:
    """A real JSB chorale (42.75 s, one tempo) whose last bass note is held until ``seconds`` s."""
    score = Score.from_midi(Path("data/jsb/test/jsb_test_000.mid").read_bytes())
    ticks_per_second = score.ticks_per_quarter * score.tempos[0].qpm / 60
    last = max(score.tracks[-1].notes, key=lambda n: n.time)
    last.duration = round(seconds * ticks_per_second) - last.time
    path = tmp_path / f"stuck_{int(seconds)}s.mid"
    score.dump_midi(str(path))
    return path


@needs_synth
def test_an_hour_long_note_is_refused_before_synthesis_with_the_length_and_the_cap(tmp_path, capsys):
    from notewave.cli import main

    hour = _chorale_with_stuck_note(tmp_path, 3600)
    with pytest.warns(
        UserWarning,
        match=r"stuck_3600s.mid: a note lasts 35\d\d s \(pitch \d+ of track 'Bass', from 4\d.\d s\)",
    ):
        with pytest.raises(
            RenderError, match=r"stuck_3600s.mid would render to 3601 s \(60.0 min\).*--max-seconds 3601"
        ):
            render_sf(hour, sample_rate=8000)
    wav = tmp_path / "hour.wav"
    assert main(["render", str(hour), str(wav), "--soundfont", str(SF)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("notewave: warning: ") and "a lost note-off?" in err[0]
    assert err[1].startswith("notewave: error: ") and "over the cap of 1200 s" in err[1] and len(err) == 2
    assert not wav.exists() and not list(tmp_path.glob(".*"))
    with pytest.raises(ConfigError, match="max_seconds"):
        render_sf(hour, max_seconds=0)


@needs_synth
def test_the_cap_counts_the_tail_and_can_be_raised_or_lifted(tmp_path, capsys):
    from notewave.cli import main

    chorale = Path("data/jsb/test/jsb_test_000.mid")
    seconds = Score.from_midi(chorale.read_bytes()).to("second").end()
    with pytest.raises(RenderError, match="over the cap of 10 s"):
        render_sf(chorale, max_seconds=10, sample_rate=8000)
    with pytest.raises(RenderError):
        render_sf(chorale, max_seconds=seconds + 0.5, tail_seconds=1.0, sample_rate=8000)
    wav, sr = render_sf(chorale, max_seconds=seconds + 1.0, tail_seconds=1.0, sample_rate=8000)
    assert wav.shape[1] == round((seconds + 1.0) * sr)
    stuck = _chorale_with_stuck_note(tmp_path, 150)  # a warning, and rendered in full with the cap lifted
    out = tmp_path / "stuck.wav"
    args = ["render", str(stuck), str(out), "--soundfont", str(SF), "--sample-rate", "8000"]
    assert main([*args, "--max-seconds", "120"]) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "a note lasts 10" in err and "--max-seconds 151" in err  # held from about 41 s to 150 s
    assert main([*args, "--max-seconds", "0"]) == 0
    assert soundfile.info(str(out)).duration == pytest.approx(151.0, abs=0.01)

"""The hybrid pipelines on real inputs with the shipped models: ``notewave compose`` (sketch -> MIDI ->
FluidSynth and audio LM) on a held-out Bach chorale and a Freedoom rock piece, ``notewave
continue-audio`` on a FluidSynth render and on a cut of a Wesnoth recording, and every bad input.

What is checked is what a user would check in the output folder: the MIDI keeps the sketch's tracks
and notes and has the new bars, the WAVs have the right rate and length and are not silent, the
PNGs are images, and the report's numbers agree with the files (the melody chroma cosine is
recomputed from the written WAV and MIDI).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image
from symusic import Score, Tempo, TimeSignature, Track

from notewave.audio.codec.data import WESNOTH_MUSIC
from notewave.bridge import chroma_from_audio, chroma_from_midi, chroma_similarity, render_midi
from notewave.cli import main
from notewave.core.midi import bar_grid, load_score
from notewave.errors import AudioError, ConditioningError, ConfigError, MidiError
from notewave.paths import DEFAULT_AUDIO_CHECKPOINT, DEFAULT_SYMBOLIC_CHECKPOINT, JSB_MIDI_DIR, PROJECT_ROOT
from notewave.pipelines import ComposeResult, ContinueAudioResult, compose, continue_audio
from notewave.pipelines.hybrid_audio import join_at_seam, tick_seconds
from notewave.symbolic.compose import first_bars

pytestmark = pytest.mark.skipif(
    not (DEFAULT_SYMBOLIC_CHECKPOINT / "config.json").is_file()
    or not (DEFAULT_AUDIO_CHECKPOINT / "config.json").is_file(),
    reason="the shipped composer and audio LM checkpoints are needed",
)
CHORALE = JSB_MIDI_DIR / "test" / "jsb_test_000.mid"
FREEDOOM = PROJECT_ROOT / "data" / "examples" / "freedoom2_D_COUNT2.mid"
RATE = 32000
FPS = 50.0


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _wav(path: Path) -> tuple[np.ndarray, int]:
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return data.T, rate


def _rms(wav: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wav))))


def _is_png(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def _tracks(score: Score) -> list[tuple[str, int, bool]]:
    return [(t.name, t.program, t.is_drum) for t in score.tracks if len(t.notes)]


def _notes_before(score: Score, tick: int) -> list[np.ndarray]:
    """Per track with notes: int64 ``[4, notes]`` (time, duration, pitch, velocity) of the notes starting
    before ``tick``, sorted (the order of simultaneous notes is not kept by a MIDI file)."""
    out = []
    for track in score.tracks:
        if len(track.notes):
            a = track.notes.numpy()
            keep = a["time"] < tick
            rows = np.stack([a[k][keep].astype(np.int64) for k in ("time", "duration", "pitch", "velocity")])
            out.append(rows[:, np.lexsort(rows[::-1])])
    return out


def _check_compose_folder(folder: Path, sketch: Score, sketch_bars: int, new_bars: int) -> dict:
    """Everything a user checks after ``compose`` continued ``sketch`` by ``new_bars`` bars."""
    report = json.loads((folder / "report.json").read_text())
    midi = load_score(folder / report["files"]["midi"])
    grid = bar_grid(midi)
    # the sketch's tracks, in order, with their notes untouched; new bars with new notes
    assert _tracks(midi) == _tracks(sketch)
    start = int(bar_grid(sketch).lines[-1])
    for got, want in zip(_notes_before(midi, start), _notes_before(sketch, start)):
        np.testing.assert_array_equal(got, want)
    assert grid.bars == sketch_bars + new_bars
    new_notes = sum(int((t.notes.numpy()["time"] >= start).sum()) for t in midi.tracks)
    assert new_notes > 0
    # the report agrees with the MIDI
    assert report["bars"] == {
        "sketch": sketch_bars, "new": new_bars, "total": grid.bars, "new_span": [sketch_bars + 1, grid.bars],
    }  # fmt: skip
    assert report["notes"]["total"] == midi.note_num() and report["notes"]["in_new_bars"] == new_notes
    assert report["notes"]["sketch"] == sketch.note_num()
    assert report["tracks"] == [name for name, _, _ in _tracks(midi)]
    assert report["seconds"]["new_bars"] == pytest.approx(
        [tick_seconds(midi, start), tick_seconds(midi, grid.lines[-1])], abs=1e-3
    )
    # the FluidSynth WAV: the whole piece plus the renderer's 1 s tail, not silent
    fluid, rate = _wav(folder / report["files"]["fluidsynth_wav"])
    assert rate == report["sample_rate"] == RATE and fluid.shape[0] == 1
    assert abs(fluid.shape[1] - (midi.to("second").end() + 1.0) * rate) <= 2
    assert report["seconds"]["fluidsynth_wav"] == fluid.shape[1] / rate
    assert _rms(fluid) > 0.01
    # the audio LM WAV: the window the report names, not silent, with the chroma cosine it reports
    lm, rate = _wav(folder / report["files"]["audio_lm_wav"])
    window = report["seconds"]["audio_lm_window"]
    assert rate == RATE and lm.shape[1] == round((window[1] - window[0]) * rate)
    assert report["seconds"]["audio_lm_wav"] == lm.shape[1] / rate
    assert window[0] == pytest.approx(report["seconds"]["new_bars"][0], abs=0.02)
    assert _rms(lm) > 1e-3
    cosine = report["melody_chroma_cosine"]["audio_lm"]
    assert isinstance(cosine, float) and -1.0 <= cosine <= 1.0
    first = round(window[0] * FPS)
    melody = chroma_from_midi(midi, FPS, duration=window[1], argmax=True)[:, first:]
    again, _ = chroma_similarity(chroma_from_audio(lm, rate, FPS, argmax=True), melody)
    assert again == pytest.approx(cosine, abs=0.05)  # the WAV is 16-bit: a few frames may flip
    for key in ("piano_roll", "spectrogram"):
        width, height = _is_png(folder / report["files"][key])
        assert width >= 600 and height >= 250
    assert sorted(p.name for p in folder.iterdir()) == sorted([*report["files"].values(), "report.json"])
    return report


def test_compose_continues_a_held_out_chorale(tmp_path, capsys) -> None:
    code, err = _run(
        ["compose", CHORALE, "--bars", 2, "--seconds", 2, "--style", "bach", "--out", tmp_path], capsys
    )
    assert code == 0, err
    report = _check_compose_folder(tmp_path, load_score(CHORALE), 15, 2)
    assert report["mode"] == "continue" and report["style"] == "bach" and report["audio_lm_style"] == "bach"
    assert report["seeds"] == {"composer": 0, "audio_lm": 0}
    assert report["checkpoints"]["composer"] == "data/checkpoints/composer"


def test_compose_python_api_on_a_freedoom_band(tmp_path) -> None:
    result = compose(FREEDOOM, bars=1, prompt_bars=4, seconds=1.5, seed=3, out_dir=tmp_path, progress=False)
    assert isinstance(result, ComposeResult)
    sketch = first_bars(load_score(FREEDOOM), 4)
    report = _check_compose_folder(tmp_path, sketch, 4, 1)
    assert report["tracks"] == ["Guitar1", "Guitar2", "Bass", "Drums"]  # those playing in bars 1-4
    assert report["seeds"]["composer"] == 3
    assert result.report == report and result.paths["report"] == tmp_path / "report.json"
    assert result.score.note_num() == report["notes"]["total"]
    assert result.lm_audio.dtype == np.float32 and result.lm_audio.shape == (1, round(1.5 * RATE))
    assert result.melody.shape == (12, 75) and set(np.unique(result.melody)) <= {0.0, 1.0}
    written, _ = _wav(tmp_path / "composition_fluidsynth.wav")
    np.testing.assert_allclose(written, np.clip(result.fluidsynth, -1, 1), atol=1 / 16384)


def test_compose_infill_changes_only_the_span(tmp_path, capsys) -> None:
    sketch = first_bars(load_score(FREEDOOM), 6)
    path = tmp_path / "sketch.mid"
    sketch.dump_midi(str(path))
    out = tmp_path / "out"
    argv = ["compose", path, "--infill", "3-3", "--tracks", "Bass", "--audio", "fluidsynth", "--out", out]
    code, err = _run(argv, capsys)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "infill" and report["bars"]["new_span"] == [3, 3]
    assert "audio_lm_wav" not in report["files"] and report["melody_chroma_cosine"] is None
    midi, grid = load_score(out / "composition.mid"), bar_grid(sketch)
    lo, hi = int(grid.lines[2]), int(grid.lines[3])
    before = load_score(path)
    assert _tracks(midi) == _tracks(before)
    after_notes, before_notes = _notes_before(midi, 10**9), _notes_before(before, 10**9)
    for (name, _, _), got, want in zip(_tracks(midi), after_notes, before_notes):
        if name != "Bass":  # other tracks: note for note
            np.testing.assert_array_equal(got, want)
        else:  # the bass outside bar 3 (half a grid position before each bar line counts as the next)
            outside = lambda rows: rows[:, (rows[0] < lo - 40) | (rows[0] >= hi - 40)]  # noqa: E731
            np.testing.assert_array_equal(outside(got), outside(want))
    fluid, rate = _wav(out / "composition_fluidsynth.wav")
    assert report["seconds"]["fluidsynth_wav"] == fluid.shape[1] / rate and _rms(fluid) > 0.01


def _check_continuation(result: ContinueAudioResult, recording: np.ndarray, seconds: float) -> None:
    report = result.report
    notes, score = result.transcription, result.score
    assert notes.note_num() == report["notes"]["transcription"] > 0
    assert (
        bar_grid(score).bars
        == report["bars"]["total"]
        == report["bars"]["transcription"] + report["bars"]["new"]
    )
    start = int(bar_grid(notes).lines[-1])
    for got, want in zip(_notes_before(score, start), _notes_before(notes, start)):
        np.testing.assert_array_equal(got, want)
    assert report["notes"]["in_new_bars"] > 0
    length = recording.shape[1]
    fade = round(report["seconds"]["crossfade"] * RATE)
    seam = round(report["seconds"]["seam_fluidsynth"] * RATE)
    assert seam == min(length, round(report["seconds"]["new_bars"][0] * RATE))
    # the original recording, then each continuation
    for joined, cut in ((result.fluidsynth, seam), (result.lm_audio, length)):
        np.testing.assert_allclose(joined[:, : cut - fade], recording[:, : cut - fade], atol=1e-6)
        assert _rms(joined[:, cut:]) > 1e-3
    assert result.lm_audio.shape[1] == length + round(seconds * RATE)
    assert abs(result.fluidsynth.shape[1] - (score.to("second").end() + 1.0) * RATE) <= 2
    cosine = report["melody_chroma_cosine"]["audio_lm"]
    assert isinstance(cosine, float) and -1.0 <= cosine <= 1.0


def test_continue_audio_on_a_chorale_render(tmp_path, capsys) -> None:
    wav, rate = render_midi(first_bars(load_score(JSB_MIDI_DIR / "test" / "jsb_test_001.mid"), 2), RATE)
    path = tmp_path / "chorale.wav"
    soundfile.write(str(path), wav.T, rate)
    out = tmp_path / "out"
    code, err = _run(["continue-audio", path, "--bars", 1, "--seconds", 1.5, "--out", out], capsys)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    recording, _ = _wav(path)
    transcription, continued = load_score(out / "transcription.mid"), load_score(out / "continuation.mid")
    assert report["notes"]["transcription"] == transcription.note_num()
    assert (
        report["notes"]["total"] == continued.note_num()
        and report["bars"]["total"] == bar_grid(continued).bars
    )
    assert report["seconds"]["recording"] == recording.shape[1] / RATE == 7.0
    for key, extra in (("fluidsynth_wav", None), ("audio_lm_wav", 1.5)):
        joined, rate = _wav(out / report["files"][key])
        assert rate == RATE and report["seconds"][key] == joined.shape[1] / rate
        fade = round(0.05 * RATE)
        seam = round(report["seconds"]["seam_fluidsynth" if extra is None else "seam_audio_lm"] * RATE)
        np.testing.assert_allclose(joined[:, : seam - fade], recording[:, : seam - fade], atol=1 / 16384)
        assert _rms(joined[:, seam:]) > 1e-3
        if extra is not None:
            assert joined.shape[1] == recording.shape[1] + round(extra * RATE)
    for key in ("piano_roll", "spectrogram"):
        _is_png(out / report["files"][key])


def test_continue_audio_python_api_on_a_wesnoth_recording(tmp_path) -> None:
    source = WESNOTH_MUSIC / "elvish-theme.ogg"
    if not source.is_file():
        pytest.skip(f"Wesnoth music is not installed ({source})")
    data, rate = soundfile.read(
        str(source), start=20 * 44100, frames=3 * 44100, dtype="float32", always_2d=True
    )
    path = tmp_path / "wesnoth.wav"
    soundfile.write(str(path), data, rate)  # a real stereo 44.1 kHz recording, 3 s
    result = continue_audio(path, bars=1, seconds=2.0, seed=1, progress=False)
    assert isinstance(result, ContinueAudioResult) and result.paths == {}
    assert result.sample_rate == RATE and result.recording.shape == (1, 3 * RATE)
    _check_continuation(result, result.recording, 2.0)
    assert result.report["seconds"]["seam_audio_lm"] == 3.0


def test_equal_power_crossfade_keeps_both_sides_and_the_power() -> None:
    wav, _ = render_midi(CHORALE, RATE)
    before, after = wav[:, : 2 * RATE], wav[:, 3 * RATE : 5 * RATE]
    seam, fade = RATE, 3200
    out = join_at_seam(before, after, seam, fade)
    np.testing.assert_array_equal(out[:, : seam - fade], before[:, : seam - fade])
    np.testing.assert_array_equal(out[:, seam:], after[:, seam:])
    same = join_at_seam(before, before, seam, fade)  # one signal on both sides: +3 dB at the centre
    middle = seam - fade // 2
    assert same[0, middle] == pytest.approx(before[0, middle] * np.sqrt(2), rel=1e-3)
    with pytest.raises(ConfigError):
        join_at_seam(before, after, -1, fade)


@pytest.mark.parametrize(
    "case",
    [
        "silent recording",
        "0.2 s recording",
        "sketch without notes",
        "infill outside",
        "unknown style",
        "style audio",
    ],
)
def test_bad_inputs_are_one_line_errors_with_nothing_written(case, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    if case in ("silent recording", "0.2 s recording"):
        path = tmp_path / "in.wav"
        if case == "silent recording":
            wav = np.zeros((1, 3 * RATE), np.float32)
        else:
            wav, _ = render_midi(CHORALE, RATE)
            wav = wav[:, : RATE // 5]
        soundfile.write(str(path), wav.T, RATE)
        argv, error, words = (
            ["continue-audio", path, "--out", out],
            AudioError,
            ("silent" if "silent" in case else "0.20 s"),
        )
    elif case == "sketch without notes":
        empty = Score(480)
        empty.tempos.append(Tempo(0, 120.0))
        empty.time_signatures.append(TimeSignature(0, 4, 4))
        empty.tracks.append(Track(name="Piano", program=0))
        path = tmp_path / "empty.mid"
        empty.dump_midi(str(path))
        argv, error, words = ["compose", path, "--out", out], MidiError, "no notes"
    elif case == "infill outside":
        argv, error, words = ["compose", CHORALE, "--infill", "14-18", "--out", out], ConfigError, "bars 1-15"
    elif case == "unknown style":
        argv, error, words = (
            ["compose", CHORALE, "--style", "polka", "--out", out],
            ConditioningError,
            "polka",
        )
    else:
        wav, _ = render_midi(CHORALE, RATE)
        path = tmp_path / "in.wav"
        soundfile.write(str(path), wav[:, : 2 * RATE].T, RATE)
        argv = ["continue-audio", path, "--style", "polka", "--out", out]
        error, words = ConditioningError, "polka"
    code, err = _run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("notewave: error:"), err
    assert words in lines[0]
    assert not out.exists()
    with pytest.raises(error):  # the Python API raises the same error, still writing nothing
        if argv[0] == "compose":
            options = {"infill": "14-18"} if "--infill" in argv else {}
            compose(
                argv[1], style="polka" if "polka" in argv else None, out_dir=out, progress=False, **options
            )
        else:
            continue_audio(argv[1], style="polka" if "polka" in argv else None, out_dir=out, progress=False)
    assert not out.exists()


def test_compose_infills_the_last_bar_of_a_sketch_with_a_pickup(tmp_path) -> None:
    """4 bars of a chorale opened by a 1/8 pickup bar (5 bars in the score, 4 for the model, which
    writes the pickup with the bar after it): its last bar can be infilled, counted in the score's
    bars, and everything before it stays."""
    sketch = first_bars(load_score(CHORALE), 4)
    sketch.time_signatures = [TimeSignature(0, 1, 8), TimeSignature(240, 4, 4)]
    grid = bar_grid(sketch)
    assert grid.meters[0] == (1, 8) and grid.bars == 5
    result = compose(sketch, infill=(5, 5), audio="fluidsynth", seed=0, out_dir=tmp_path, progress=False)
    lines = bar_grid(result.score).lines
    assert bar_grid(result.score).meters == grid.meters
    kept = [(n.time, n.pitch) for t in result.score.tracks for n in t.notes if n.time < lines[4]]
    assert kept == [(n.time, n.pitch) for t in sketch.tracks for n in t.notes if n.time < lines[4]]
    with pytest.raises(ConfigError, match="has bars 1-5"):
        compose(sketch, infill=(6, 6), audio="fluidsynth", out_dir=tmp_path / "no", progress=False)

"""Round trip MIDI -> FluidSynth -> shipped transcriber -> note F1 (``notewave eval roundtrip``) on real
renders of held-out JSB chorales, the scoring function on known answers, and bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from notewave.bridge.roundtrip import (
    RENDER_RATE,
    TAIL_SECONDS,
    NoteScores,
    evaluate_roundtrip,
    excerpt,
    heldout_pieces,
    note_rows,
    roundtrip_piece,
    score_notes,
)
from notewave.bridge.soundfont import list_soundfonts
from notewave.cli import main
from notewave.core.midi import load_score
from notewave.errors import ConfigError, DataError, SoundfontError
from notewave.paths import DEFAULT_TRANSCRIBER_CHECKPOINT, JSB_MIDI_DIR

SECONDS = 4.0
# The shipped transcriber on the first 4 s of jsb_test_000/001 rendered with the default SoundFont
# (FluidR3_GM, church organ 19): measured mean onset F1 0.71; the floor leaves room for other
# SoundFonts and library versions while still failing on a broken render or transcription.
ONSET_F1_FLOOR = 0.4

needs_models = pytest.mark.skipif(
    not list_soundfonts() or not (DEFAULT_TRANSCRIBER_CHECKPOINT / "model.safetensors").is_file(),
    reason="no SoundFont installed or no shipped transcriber",
)


@pytest.fixture(scope="module")
def report():
    """The round trip of 2 held-out chorales, 4 s each (real renders, the shipped transcriber)."""
    return evaluate_roundtrip(heldout_pieces(None, 2), seconds=SECONDS, progress=False)


# ---- scoring on known answers ---------------------------------------------------------------
def test_a_midi_scored_against_itself_is_perfect() -> None:
    path = JSB_MIDI_DIR / "test" / "jsb_test_003.mid"
    score = load_score(path)
    assert score_notes(score, score) == NoteScores(1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    rows = note_rows(score)
    assert len(rows) == score.note_num() > 50
    assert score_notes(rows, rows).f1 == 1.0  # note rows (as basic-pitch's output) score the same


def test_notes_a_semitone_off_score_zero() -> None:
    score = load_score(JSB_MIDI_DIR / "test" / "jsb_test_003.mid")
    shifted = score.shift_pitch(1)
    scores = score_notes(score, shifted)
    assert scores == NoteScores(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    rows = note_rows(score)
    assert score_notes(rows, rows + [0.0, 0.0, 1.0]).f1 == 0.0
    # and only the shifted notes are lost: shift half of them
    half = rows.copy()
    half[::2, 2] += 1
    partial = score_notes(rows, half)
    assert partial.recall == pytest.approx(len(rows[1::2]) / len(rows))


def test_late_offsets_lower_only_the_f1_with_offsets() -> None:
    rows = note_rows(load_score(JSB_MIDI_DIR / "test" / "jsb_test_003.mid"))
    longer = rows.copy()
    longer[:, 1] += 1.0  # every note held 1 s longer: onsets right, offsets wrong
    scores = score_notes(rows, longer)
    assert scores.f1 == 1.0 and scores.f1_with_offsets < 0.1


def test_excerpt_keeps_the_notes_that_start_before_its_end_whole() -> None:
    path = JSB_MIDI_DIR / "test" / "jsb_test_000.mid"
    whole = note_rows(load_score(path))
    cut = excerpt(path, 2.8, program=52)
    rows = note_rows(cut)
    np.testing.assert_allclose(rows, whole[whole[:, 0] < 2.8], atol=1e-4)
    assert rows[:, 1].max() > 2.8  # a note crossing the cut keeps its length
    assert {t.program for t in cut.tracks} == {52}


def test_heldout_pieces_never_come_from_training(tmp_path: Path) -> None:
    test_split = sorted((JSB_MIDI_DIR / "test").glob("*.mid"))
    assert heldout_pieces(None, 3) == test_split[:3]
    assert heldout_pieces([JSB_MIDI_DIR], 2) == test_split[:2]  # a folder with test/: its test split
    valid = tmp_path / "valid"  # a folder named valid (or test): all its files
    valid.mkdir()
    for path in test_split[40:42]:
        shutil.copy(path, valid / path.name.replace("test", "valid"))
    assert heldout_pieces([JSB_MIDI_DIR / "test", valid], 1) == [test_split[0], valid / "jsb_valid_040.mid"]
    flat = tmp_path / "flat"  # a flat folder: every 20th file, as `notewave train transcriber` holds out
    flat.mkdir()
    for path in test_split[:45]:
        shutil.copy(path, flat)
    assert [p.name for p in heldout_pieces([flat], 5)] == ["jsb_test_019.mid", "jsb_test_039.mid"]


# ---- real round trips ---------------------------------------------------------------------
@needs_models
def test_roundtrip_scores_two_real_chorales(report) -> None:
    assert [Path(p.piece).name for p in report.pieces] == ["jsb_test_000.mid", "jsb_test_001.mid"]
    for piece in report.pieces:
        s = piece.scores
        for value in (s.precision, s.recall, s.f1, s.precision_with_offsets, s.f1_with_offsets):
            assert 0.0 <= value <= 1.0
        assert s.f1 >= s.f1_with_offsets  # an offset match is also an onset match
        assert piece.transcribed_notes > 0 and piece.reference_notes > 10
        assert SECONDS < piece.audio_seconds < SECONDS + 3
    assert report.mean.f1 == pytest.approx(np.mean([p.scores.f1 for p in report.pieces]))
    assert report.mean.f1 >= ONSET_F1_FLOOR, report.table()
    table = report.table()
    assert "jsb_test_001.mid" in table and f"**{report.mean.f1:.3f}**" in table


@needs_models
def test_roundtrip_piece_returns_the_audio_and_both_scores() -> None:
    trip = roundtrip_piece(JSB_MIDI_DIR / "test" / "jsb_test_002.mid", seconds=2.0)
    last_off = note_rows(trip.reference)[:, 1].max()
    assert trip.sample_rate == RENDER_RATE
    assert trip.audio.shape == (1, round((last_off + TAIL_SECONDS) * RENDER_RATE))
    assert trip.transcription.note_num() == trip.result.transcribed_notes > 0
    assert trip.result.scores == score_notes(trip.reference, trip.transcription)


@needs_models
def test_cli_prints_the_table_and_writes_json(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sub" / "roundtrip.json"
    argv = ["eval", "roundtrip", "--pieces", "2", "--seconds", str(SECONDS), "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| jsb_test_000.mid |" in printed and "mean of 2" in printed
    data = json.loads(out.read_text())
    assert [Path(p["piece"]).name for p in data["pieces"]] == ["jsb_test_000.mid", "jsb_test_001.mid"]
    assert data["seconds"] == SECONDS and data["sample_rate"] == RENDER_RATE
    f1 = [p["scores"]["f1"] for p in data["pieces"]]
    assert data["mean"]["f1"] == pytest.approx(np.mean(f1))
    assert all(p["scores"]["f1"] >= p["scores"]["f1_with_offsets"] for p in data["pieces"])
    assert [p.name for p in out.parent.iterdir()] == ["roundtrip.json"]  # no temporary file left


# ---- bad inputs -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--midi", "{empty}"], "no MIDI files"),
        (["--midi", "{missing}"], "folder not found"),
        (["--midi", "{few}"], "no held-out MIDI files"),
        (["--soundfont", "{missing}.sf2"], "does not exist"),
        (["--pieces", "0"], "pieces must be"),
        (["--seconds", "0"], "seconds must be > 0"),
        (["--checkpoint", "{empty}"], "no transcriber checkpoint"),
    ],
)
def test_cli_bad_inputs_give_one_line_and_no_json(tmp_path: Path, capsys, extra, message) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "few").mkdir()
    for path in sorted((JSB_MIDI_DIR / "test").glob("*.mid"))[:3]:  # the shipped split (train/ is not)
        shutil.copy(path, tmp_path / "few")
    names = {"empty": tmp_path / "empty", "missing": tmp_path / "missing", "few": tmp_path / "few"}
    out = tmp_path / "out.json"
    argv = ["eval", "roundtrip", *[e.format(**names) for e in extra], "--json", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("notewave: error:") and message in err[0], err
    assert not out.exists()


def test_library_bad_inputs() -> None:
    with pytest.raises(ConfigError):
        heldout_pieces(None, 0)
    with pytest.raises(DataError):
        evaluate_roundtrip([], progress=False)
    with pytest.raises(SoundfontError):
        evaluate_roundtrip(heldout_pieces(None, 1), soundfont="/no/such.sf2", progress=False)
    with pytest.raises(ConfigError):
        excerpt(JSB_MIDI_DIR / "test" / "jsb_test_000.mid", 5.0, program=128)
    with pytest.raises(ConfigError):
        score_notes(np.zeros((4, 2)), np.zeros((0, 3)))

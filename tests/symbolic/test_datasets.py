"""Tests of the JSB Chorales conversion and the music21 corpus export, on the real data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import symusic

from notewave.cli.data import add_cli
from notewave.errors import ConfigError, DataError, NotewaveError
from notewave.symbolic.sources import (
    JSB_CHOIR_PROGRAM,
    JSB_ENV_VAR,
    JSB_VOICES,
    MUSIC21_COLLECTIONS,
    convert_jsb,
    default_jsb_json,
    export_music21,
    jsb_chorale_to_score,
    list_music21_collections,
    load_jsb_json,
    voice_runs,
)

TPQ = 480
STEP = TPQ // 4


@pytest.fixture(scope="module")
def jsb_json() -> Path:
    try:
        return default_jsb_json()
    except DataError as exc:
        pytest.skip(f"JSB Chorales JSON not available: {exc}")


@pytest.fixture(scope="module")
def jsb_data(jsb_json: Path) -> dict[str, list[list[list[int]]]]:
    return load_jsb_json(jsb_json)


@pytest.fixture(scope="module")
def test_split(jsb_json: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("jsb")
    return convert_jsb(jsb_json, out, splits=["test"], progress=False)["test"]


def grid_from_track(track: symusic.Track, n_frames: int) -> list[int]:
    """Rebuild one voice's 16th-note frames (-1 where silent) from a track's notes."""
    grid = [-1] * n_frames
    for note in track.notes:
        assert note.time % STEP == 0 and note.duration % STEP == 0 and note.duration > 0
        start, end = note.time // STEP, (note.time + note.duration) // STEP
        assert end <= n_frames
        assert all(value == -1 for value in grid[start:end]), "overlapping notes in one voice"
        grid[start:end] = [note.pitch] * (end - start)
    return grid


def test_json_structure(jsb_data):
    assert {split: len(chorales) for split, chorales in jsb_data.items()} == {
        "train": 229,
        "valid": 76,
        "test": 77,
    }
    frame = jsb_data["test"][0][0]
    assert len(frame) == 4 and all(type(value) is int for value in frame)


def test_test_split_files(test_split):
    assert len(test_split) == 77
    assert [path.name for path in test_split] == [f"jsb_test_{i:03d}.mid" for i in range(77)]
    assert all(path.is_file() for path in test_split)
    assert not [p for p in test_split[0].parent.iterdir() if p.suffix != ".mid"], (
        "temporary files left behind"
    )


def test_tracks_metre_tempo_velocity(test_split):
    for path in test_split:
        score = symusic.Score(path)
        assert score.ticks_per_quarter == TPQ
        assert [track.name for track in score.tracks] == list(JSB_VOICES)
        assert all(track.program == 19 and not track.is_drum for track in score.tracks)
        assert [(ts.time, ts.numerator, ts.denominator) for ts in score.time_signatures] == [(0, 4, 4)]
        assert [(tempo.time, tempo.mspq) for tempo in score.tempos] == [(0, 750_000)]  # 80 BPM
        assert {note.velocity for track in score.tracks for note in track.notes} == {80}


def test_grid_roundtrip_and_note_counts(test_split, jsb_data):
    for path, frames in zip(test_split, jsb_data["test"], strict=True):
        score = symusic.Score(path)
        for voice, track in enumerate(score.tracks):
            column = [frame[voice] for frame in frames]
            assert grid_from_track(track, len(frames)) == column, f"{path.name} {track.name}"
            runs = sum(1 for i, p in enumerate(column) if p != -1 and (i == 0 or column[i - 1] != p))
            assert len(track.notes) == runs


def test_merging_and_silence_small_example():
    frames = [[60, 55, 50, -1], [60, 55, -1, -1], [62, -1, 50, 40], [62, 57, 50, 40], [-1, 57, 50, 40]]
    score = jsb_chorale_to_score(frames, ticks_per_quarter=TPQ)
    notes = [[(n.time, n.duration, n.pitch) for n in track.notes] for track in score.tracks]
    assert notes[0] == [(0, 2 * STEP, 60), (2 * STEP, 2 * STEP, 62)]
    assert notes[1] == [(0, 2 * STEP, 55), (3 * STEP, 2 * STEP, 57)]
    assert notes[2] == [(0, STEP, 50), (2 * STEP, 3 * STEP, 50)]  # silence splits a repeated pitch
    assert notes[3] == [(2 * STEP, 3 * STEP, 40)]
    assert voice_runs([-1, -1]) == [] and voice_runs([7, 7, 7]) == [(0, 3, 7)]


def test_options_tempo_program_resolution(jsb_json, jsb_data, tmp_path):
    options = {"tempo_bpm": 100, "program": JSB_CHOIR_PROGRAM, "ticks_per_quarter": 96, "progress": False}
    written = convert_jsb(jsb_json, tmp_path, splits=("valid",), **options)
    assert list(written) == ["valid"] and len(written["valid"]) == 76
    score = symusic.Score(written["valid"][5])
    assert score.ticks_per_quarter == 96
    assert [tempo.mspq for tempo in score.tempos] == [600_000]
    assert {track.program for track in score.tracks} == {JSB_CHOIR_PROGRAM}
    frames = jsb_data["valid"][5]
    first = score.tracks[0].notes[0]
    assert first.time == 24 * next(i for i, f in enumerate(frames) if f[0] != -1)


def test_deterministic_bytes(jsb_json, test_split, tmp_path):
    again = convert_jsb(jsb_json, tmp_path, splits=["test"], progress=False)["test"]
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in test_split]
    rerun = convert_jsb(jsb_json, tmp_path, splits=["test"], progress=False)["test"]
    assert [p.read_bytes() for p in rerun] == [p.read_bytes() for p in test_split]


def test_missing_json(tmp_path, monkeypatch):
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match="nope.json"):
        convert_jsb(missing, tmp_path / "out", progress=False)
    monkeypatch.setenv(JSB_ENV_VAR, str(missing))
    with pytest.raises(DataError, match=JSB_ENV_VAR):
        default_jsb_json()
    with pytest.raises(DataError):
        convert_jsb(None, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2, 3]",
        json.dumps({"test": [[[60, 60, 60]]]}),
        json.dumps({"test": [[[60, 55, 50, 200]]]}),
        json.dumps({"test": [[[60.5, 55, 50, 45]]]}),
        json.dumps({"test": [[]]}),
    ],
)
def test_malformed_json(tmp_path, content):
    bad = tmp_path / "broken_jsb.json"
    bad.write_text(content)
    with pytest.raises(DataError, match="broken_jsb.json"):
        convert_jsb(bad, tmp_path / "out", splits=["test"], progress=False)


def test_missing_split_and_bad_options(tmp_path):
    good = tmp_path / "tiny.json"
    good.write_text(json.dumps({"test": [[[60.0, 55, 50, 45], [60, 55, 50, -1]]]}))
    assert len(convert_jsb(good, tmp_path / "out", splits=["test"], progress=False)["test"]) == 1
    with pytest.raises(DataError, match="train"):
        convert_jsb(good, tmp_path / "out", splits=["train"], progress=False)
    for kwargs in ({"splits": ["dev"]}, {"tempo_bpm": 0}, {"program": 128}, {"ticks_per_quarter": 90}):
        with pytest.raises(ConfigError):
            convert_jsb(good, tmp_path / "out", progress=False, **kwargs)


def test_export_music21_bach(tmp_path):
    card = export_music21(tmp_path, "bach", limit=3, jobs=1, progress=False)
    written = sorted(tmp_path.glob("*/*.mid"))
    assert len(written) == 3 and sorted(p["file"] for p in card["pieces"]) == [
        p.relative_to(tmp_path).as_posix() for p in written
    ]
    for path in written:
        assert path.name.startswith("bach_bwv") and path.suffix == ".mid"
        score = symusic.Score(path)
        assert score.note_num() > 0


def test_music21_collections():
    with pytest.raises(ConfigError, match="known collections: bach"):
        export_music21(Path("unused"), "no-such-composer", limit=1)
    counts = list_music21_collections()
    assert set(counts) == set(MUSIC21_COLLECTIONS)
    assert counts["bach"] > 300 and all(count > 0 for count in counts.values())


def test_cli(jsb_json, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="notewave")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", "jsb", str(jsb_json), "--out", str(tmp_path), "--splits", "test"])
    assert args.func(args) == 0
    assert len(list((tmp_path / "test").glob("*.mid"))) == 77
    assert "77" in capsys.readouterr().out
    args = parser.parse_args(
        ["data", "music21", "--collection", "bach", "--out", str(tmp_path / "m"), "--limit", "1"]
    )
    assert args.func(args) == 0 and len(list((tmp_path / "m").glob("*/*.mid"))) == 1
    args = parser.parse_args(["data", "music21", "--collection", "nobody"])
    with pytest.raises(NotewaveError):
        args.func(args)

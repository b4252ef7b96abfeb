"""``notewave data music21``: split, labelled, de-duplicated MIDI from music21's real corpus.

One small export (3 Bach chorales, the 2 Nottingham tunes music21 ships, 2 O'Neill tunes and
one Josquin chanson) is made once per module, in one process; the tests read it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import symusic

from notewave.cli.data import add_cli
from notewave.core.midi import bar_grid
from notewave.errors import ConfigError, DataError, NotewaveError
from notewave.symbolic.sources import (
    MUSIC21_COLLECTIONS,
    MUSIC21_STYLES,
    SPLITS,
    default_jsb_json,
    export_music21,
    load_jsb_json,
    music21_pieces,
    split_for,
)
from notewave.symbolic.sources import music21 as music21_module

pytest.importorskip("music21")

ONLY = [
    "bach/bwv102.7",  # JSB test chorale 67; its own hash split is train
    "bach/bwv1.6",
    "bach/bwv10.7",
    "nottingham-dataset/*",
    "oneills1850/0001-0050#7",
    "oneills1850/0001-0050#20",
    "josquin/milleRegrets",
]
COLLECTIONS = ["bach", "nottingham-dataset", "oneills1850", "josquin"]


def _pitch_classes_merged(pitches: list[int]) -> list[int]:
    merged: list[int] = []
    for pitch in pitches:
        if not merged or merged[-1] != pitch:
            merged.append(pitch)
    return [(b - a) % 12 for a, b in zip(merged, merged[1:], strict=False)]


@pytest.fixture(scope="module")
def jsb() -> dict:
    try:
        return load_jsb_json(default_jsb_json())
    except DataError as exc:
        pytest.skip(f"JSB Chorales JSON not available: {exc}")


@pytest.fixture(scope="module")
def export(jsb, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("music21")
    card = export_music21(out, COLLECTIONS, jobs=1, only=ONLY, progress=False)
    return out, card


@pytest.fixture(scope="module")
def by_origin(export) -> dict[str, dict]:
    return {piece["origin"]: piece for piece in export[1]["pieces"]}


def test_files_in_split_folders_match_the_card(export):
    out, card = export
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.mid"))
    assert on_disk == sorted(piece["file"] for piece in card["pieces"])
    assert all(name.split("/")[0] in SPLITS for name in on_disk)
    assert json.loads((out / "data.json").read_text())["pieces"] == card["pieces"]
    assert card["summary"]["pieces"] == len(on_disk) == 3 + 2 + 2 + 1
    assert card["skipped"] == [] and card["duplicates"] == []
    for piece in card["pieces"]:
        assert piece["split"] == piece["file"].split("/")[0]
        assert piece["style"] in MUSIC21_STYLES and piece["collection"] in MUSIC21_COLLECTIONS
        score = symusic.Score(out / piece["file"])
        assert [int(t.program) for t in score.tracks] == piece["programs"]
        assert score.note_num() == piece["notes"] > 0 and piece["bars"] > 0 and piece["seconds"] > 0
    styles = {piece["collection"]: piece["style"] for piece in card["pieces"]}
    assert styles == {
        "bach": "bach",
        "nottingham-dataset": "folk",
        "oneills1850": "irish",
        "josquin": "renaissance",
    }
    assert card["summary"]["styles"] == {"bach": 3, "folk": 2, "irish": 2, "renaissance": 1}
    assert card["collections"]["bach"]["pieces"] == 3 and card["collections"]["oneills1850"]["tried"] == 2
    text = (out / "DATA_CARD.md").read_text()
    assert "- Source: music21's bundled corpus" in text and "## JSB Chorales de-duplication" in text
    assert "| nottingham-dataset | folk | 2 |" in text


def test_track_names_and_programs(export, by_origin):
    out, _ = export
    tracks = {
        origin: [(t.name, int(t.program)) for t in symusic.Score(out / p["file"]).tracks]
        for origin, p in by_origin.items()
    }
    assert tracks["bach/bwv102.7"] == [("Soprano", 19), ("Alto", 19), ("Tenor", 19), ("Bass", 19)]
    assert tracks["oneills1850/0001-0050#7"] == [("Melody", 40)]
    assert tracks["josquin/milleRegrets"] == [
        ("Superius", 52),
        ("Contratenor", 52),
        ("Tenor", 52),
        ("Bassus", 52),
    ]
    for origin in ("nottingham-dataset/reelsa-c#80", "nottingham-dataset/reelsa-c#81"):
        assert tracks[origin] == [("Melody", 73), ("Chords", 25)]
        assert by_origin[origin]["chord_symbols"] > 10
    assert all(not t.is_drum for p in by_origin.values() for t in symusic.Score(out / p["file"]).tracks)


@pytest.mark.parametrize(("origin", "pickup"), [("bach/bwv1.6", 1.0), ("oneills1850/0001-0050#7", 0.5)])
def test_pickup_is_padded_so_bar_lines_fall_where_the_score_has_them(export, by_origin, origin, pickup):
    from music21 import corpus, stream

    out, _ = export
    score = symusic.Score(out / by_origin[origin]["file"])
    name, _, number = origin.partition("#")
    parsed = corpus.parse(name, number=int(number)) if number else corpus.parse(name)
    parsed = parsed.scores[0] if isinstance(parsed, stream.Opus) else parsed
    measures = list(parsed.parts[0].getElementsByClass(stream.Measure))
    bar = float(measures[1].barDuration.quarterLength)
    assert float(measures[1].offset) == pickup  # the score starts with a pickup of this length
    pad = round((bar - pickup) * 480)
    first = min(n.time for t in score.tracks for n in t.notes)
    assert first == pad  # rests before the pickup fill the first bar
    grid = bar_grid(score)
    for measure in measures[1:9]:  # the score's next bar lines are the MIDI's (repeats come later)
        assert pad + round(float(measure.offset) * 480) in set(grid.lines.tolist())
    assert by_origin[origin]["pickup_padding_quarters"] == bar - pickup


def test_nottingham_chords_sound_the_chord_symbols(export, by_origin):
    """Little Czech Number: ``|:E|"Am"A^G A"E7"B|"Am"cB c"E7"d|"Am"e^d e"Dm"f|"Am"e2 -"Am/c"e2|...``."""
    out, _ = export
    score = symusic.Score(out / by_origin["nottingham-dataset/reelsa-c#81"]["file"])
    melody, chords = score.tracks
    tpq = score.ticks_per_quarter
    onsets: dict[int, list[int]] = {}
    for note in chords.notes:
        onsets.setdefault(note.time, []).append(note.pitch)
    starts = sorted(onsets)
    am, e7, dm = {9, 0, 4}, {4, 8, 11, 2}, {2, 5, 9}
    expected = [am, e7, am, e7, am, dm, am, am]  # the last one is Am/C: bass C, same pitch classes
    assert [{p % 12 for p in onsets[t]} for t in starts[:8]] == expected
    # 4/4 after a 1-beat pickup, padded with 3 beats of rest: Am on bar 2's first beat (tick 4 quarters),
    # E7 on its fourth, ..., Am/c on the third beat of bar 5.
    assert starts[:8] == [(q + 3) * tpq for q in (1, 4, 5, 8, 9, 12, 13, 15)]
    assert min(onsets[starts[7]]) % 12 == 0  # Am/c: C is the lowest note
    for note in chords.notes:
        assert 48 <= min(onsets[note.time]) <= 59 and note.velocity == 64
        later = [t for t in starts if t > note.time]
        assert not later or note.time + note.duration <= later[0]  # a chord ends where the next begins
    assert melody.notes[0].time == 3 * tpq and melody.notes[0].pitch == 64  # the pickup E, last beat of bar 1


def test_jsb_test_chorale_is_kept_out_of_train(export, by_origin, jsb):
    piece = by_origin["bach/bwv102.7"]
    assert split_for("bach/bwv102.7") == "train"  # the hash alone would have trained on it
    assert piece["split"] == "test" and piece["split_by"] == "jsb"
    assert piece["jsb_match"]["split"] == "test" and piece["jsb_match"]["index"] == 67
    # The same chorale, checked directly: soprano and bass interval sequences agree with JSB test #67.
    out, card = export
    score = symusic.Score(out / piece["file"])
    soprano = [n.pitch for n in sorted(score.tracks[0].notes, key=lambda n: n.time)]
    bass = [n.pitch for n in sorted(score.tracks[3].notes, key=lambda n: n.time)]
    frames = jsb["test"][67]
    assert _pitch_classes_merged([f[0] for f in frames if f[0] >= 0]) == _pitch_classes_merged(soprano)
    assert _pitch_classes_merged([f[3] for f in frames if f[3] >= 0]) == _pitch_classes_merged(bass)
    assert all(p.get("jsb_match", {}).get("split") in (None, p["split"]) for p in card["pieces"])
    assert (
        card["jsb_dedup"]["pieces_matched"]["test"] >= 1 and card["jsb_dedup"]["jsb_chorales"]["test"] == 77
    )


def test_second_run_uses_the_cache(export, monkeypatch):
    out, card = export
    stale = out / "train" / "left_from_an_old_run.mid"
    stale.write_bytes((out / card["pieces"][0]["file"]).read_bytes())
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/*.mid") if p != stale}
    data_json = (out / "data.json").read_bytes()

    def no_parsing(*args, **kwargs):
        raise AssertionError("a cached piece was parsed again")

    monkeypatch.setattr(music21_module, "convert_piece", no_parsing)
    again = export_music21(out, COLLECTIONS, jobs=1, only=ONLY, progress=False)
    assert again["run"] == {"converted": 0, "cached": 8, "seconds": again["run"]["seconds"]}
    assert (out / "data.json").read_bytes() == data_json
    assert not stale.exists()
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*.mid")} == before  # unchanged files not rewritten


def test_pieces_limit_split_keys_and_duplicates(tmp_path):
    essen = music21_pieces(["essenFolksong"], limit=3)
    assert [p.key for p in essen] == [
        "essenFolksong/altdeu10#1",
        "essenFolksong/altdeu10#2",
        "essenFolksong/altdeu10#3",
    ]
    assert essen[0].name == "essenFolksong_altdeu10_0001.mid" and essen[0].style == "folk"
    both = music21_pieces("oneills1850", only=["oneills1850/0626-0635#626", "oneills1850/0626-0700#626"])
    assert len(both) == 2 and {p.split_key for p in both} == {"oneills1850#626"}
    variants = music21_pieces("bach", only=["bach/bwv18.5-*"])
    assert {p.split_key for p in variants} == {"bach/bwv18.5"} and len(variants) == 2
    assert not any(p.path.endswith("bwv846.mxl") for p in music21_pieces("bach"))
    assert music21_pieces("Schumann")[0].collection == "schumann_robert"  # the old alias still works
    # Two tunes of the Essen collection hold the same notes: the second is left out and listed.
    only = ["essenFolksong/boehme10#1", "essenFolksong/boehme10#2", "essenFolksong/boehme10#3"]
    card = export_music21(tmp_path, "essenFolksong", jobs=1, only=only, progress=False)
    assert card["summary"]["pieces"] == 2 and len(list(tmp_path.glob("*/*.mid"))) == 2
    assert card["duplicates"] == [
        {
            "piece": "essenFolksong/boehme10#2",
            "collection": "essenFolksong",
            "same_as": "essenFolksong/boehme10#1",
        }
    ]
    assert card["collections"]["essenFolksong"]["duplicates"] == 1


def test_bad_collection_and_options(tmp_path):
    with pytest.raises(ConfigError, match="known collections: bach, palestrina") as info:
        export_music21(tmp_path, "no-such-composer")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="left out"):
        music21_pieces("demos")
    for kwargs in ({"limit": 0}, {"jobs": 0}, {"only": ["bach/nothing-like-this"]}):
        with pytest.raises(ConfigError):
            export_music21(tmp_path, "bach", progress=False, **kwargs)
    assert not any(tmp_path.iterdir())


def test_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="notewave")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", "music21", "--list"])
    assert args.func(args) == 0
    listed = capsys.readouterr().out
    assert "essenFolksong" in listed and "irish" in listed and "theoryExercises" in listed
    out = tmp_path / "m"
    argv = [
        "data",
        "music21",
        "--out",
        str(out),
        "--collections",
        "oneills1850",
        "--limit",
        "2",
        "--jobs",
        "1",
    ]
    args = parser.parse_args([*argv, "--no-progress"])
    assert args.func(args) == 0
    assert len(list(out.glob("*/*.mid"))) == 2 and "music21: 2 MIDI files" in capsys.readouterr().out
    args = parser.parse_args(["data", "music21", "--collections", "nobody", "--out", str(tmp_path / "x")])
    with pytest.raises(NotewaveError):
        args.func(args)

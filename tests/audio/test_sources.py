"""``notewave data game-music``: real tracks of the Debian game-music packages, split, cache, card."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from notewave.audio.codec.data import split_folder
from notewave.audio.lm.data import split_files
from notewave.audio.sources import GAME_MUSIC, export_game_music, plan_tracks
from notewave.audio.sources import packages as registry
from notewave.cli import main
from notewave.core.audio_io import load_audio
from notewave.errors import DataError

SR = 32000
SECONDS = 2.0
#: the 8 Wesnoth tracks the first codec held out (every 5th file of the folder, sorted)
WESNOTH_TEST = [
    "defeat",
    "frantic",
    "knolls",
    "northern_mountains",
    "sad",
    "the_city_falls",
    "traveling_minstrels",
    "wanderer",
]

pytestmark = pytest.mark.skipif(
    not all(GAME_MUSIC[name].installed() for name in ("hyperrogue", "nexuiz", "warzone2100")),
    reason="hyperrogue-music, nexuiz-music and warzone2100-music are not installed",
)


def _pick() -> list:
    """A train and a test track of a folder package (hyperrogue), a zip member, an Opus track."""
    plan = {(j.package, j.split): j for j in reversed(plan_tracks(["hyperrogue", "nexuiz", "warzone2100"]))}
    return [
        plan["hyperrogue", "train"],
        plan["hyperrogue", "test"],
        plan["nexuiz", "test"],
        plan["warzone2100", "train"],
    ]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list]:
    out = tmp_path_factory.mktemp("game-music")
    jobs = _pick()
    only = [f"{j.package}/{j.name}" for j in jobs]
    card = export_game_music(
        out, ["hyperrogue", "nexuiz", "warzone2100"], jobs=2, progress=False, only=only, max_seconds=SECONDS
    )
    return out, card, jobs


def test_mono_32khz_flac_in_split_folders(export: tuple[Path, dict, list]) -> None:
    out, card, jobs = export
    assert card["run"]["written"] == len(jobs) and card["run"]["cached"] == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.flac")) == sorted(
        j.out_path for j in jobs
    )
    for job in jobs:
        info = sf.info(str(out / job.out_path))
        assert (info.format, info.subtype, info.channels, info.samplerate) == ("FLAC", "PCM_16", 1, SR)
        assert abs(info.duration - SECONDS) < 1e-3
    folder_job = jobs[0]  # a folder file: the FLAC equals the source read, downmixed and resampled
    written, _ = sf.read(str(out / folder_job.out_path), dtype="float32")
    reference, _ = load_audio(folder_job.source, SR, mono=True, duration=SECONDS)
    assert np.sqrt(np.mean(written**2)) > 1e-3
    assert np.abs(written - reference[0, : len(written)]).max() < 2e-3


def test_card_lists_splits_hours_and_licence(export: tuple[Path, dict, list]) -> None:
    out, card, jobs = export
    assert json.loads((out / "data.json").read_text())["packages"] == card["packages"]
    readme = (out / "README.md").read_text()
    for job in jobs:
        entry = card["packages"][job.package]
        assert entry["sample_rate"] == SR and entry["package"] == GAME_MUSIC[job.package].package
        assert entry["licence"] in readme and GAME_MUSIC[job.package].package in readme
        assert (job.name in entry["test_tracks"]) == (job.split == "test")
    hyper = card["packages"]["hyperrogue"]
    assert hyper["tracks"] == {"train": 1, "test": 1}
    assert hyper["hours"]["train"] == pytest.approx(SECONDS / 3600, abs=1e-3)
    assert card["totals"]["tracks"] == {"train": 2, "test": 2}


def test_cache_rewrites_nothing_then_follows_the_cap(export: tuple[Path, dict, list]) -> None:
    out, _, jobs = export
    only = [f"{j.package}/{j.name}" for j in jobs]
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")}
    again = export_game_music(
        out, ["hyperrogue", "nexuiz", "warzone2100"], jobs=1, progress=False, only=only, max_seconds=SECONDS
    )
    assert again["run"]["written"] == 0 and again["run"]["cached"] == len(jobs)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")} == stamps
    shorter = export_game_music(out, ["hyperrogue"], jobs=1, progress=False, only=only[:1], max_seconds=1.0)
    assert shorter["run"]["written"] == 1
    assert sf.info(str(out / jobs[0].out_path)).duration == pytest.approx(1.0, abs=1e-3)
    export_game_music(out, ["hyperrogue"], jobs=1, progress=False, only=only[:1], max_seconds=SECONDS)


def test_split_folder_uses_train_and_test_folders(export: tuple[Path, dict, list]) -> None:
    out, _, jobs = export
    train, valid = split_folder(out)
    assert sorted(p.relative_to(out).as_posix() for p in train) == sorted(
        j.out_path for j in jobs if j.split == "train"
    )
    assert sorted(p.relative_to(out).as_posix() for p in valid) == sorted(
        j.out_path for j in jobs if j.split == "test"
    )
    assert split_files(out, (".flac",)) == (train, valid)
    assert split_folder(out / "hyperrogue") == ([out / jobs[0].out_path], [out / jobs[1].out_path])


def test_split_folder_midi_keeps_test_out_and_flat_folders_every_nth(tmp_path: Path) -> None:
    for rel in ("train/a.mid", "valid/b.mid", "test/c.mid", "flat/0.wav", "flat/1.wav", "flat/2.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert split_folder(tmp_path, midi=True) == ([tmp_path / "train/a.mid"], [tmp_path / "valid/b.mid"])
    flat = [tmp_path / "flat" / f"{i}.wav" for i in range(3)]
    assert split_folder(tmp_path / "flat", every=3) == (flat[:2], flat[2:])
    only_test = [tmp_path / "jsb" / "test" / f"{i}.mid" for i in range(2)]  # a clean clone's data/jsb
    for path in only_test:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    assert split_folder(tmp_path / "jsb", midi=True, every=2) == (only_test[:1], only_test[1:])


def test_wesnoth_test_set_and_remakes_share_a_split() -> None:
    if not GAME_MUSIC["wesnoth"].installed():
        pytest.skip("wesnoth-1.16-music is not installed")
    plan = plan_tracks(["wesnoth", "warzone2100"])
    assert [j.name for j in plan if j.package == "wesnoth" and j.split == "test"] == WESNOTH_TEST
    split = {j.name.split("__")[-1]: j.split for j in plan if j.package == "warzone2100"}
    assert split["menu"] == split["menu_enhanced"] and split["track3"] == split["track3_enhanced"]
    assert 0 < sum(s == "test" for s in split.values()) < len(split)


def test_short_tracks_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _pick()[2]
    monkeypatch.setitem(
        registry.GAME_MUSIC, "nexuiz", dataclasses.replace(GAME_MUSIC["nexuiz"], min_seconds=1e6)
    )
    card = export_game_music(
        tmp_path, ["nexuiz"], jobs=1, progress=False, only=[f"nexuiz/{job.name}"], max_seconds=1.0
    )
    assert card["run"]["skipped"] == [f"nexuiz/{job.name}"] and not list(tmp_path.rglob("*.flac"))
    assert job.name in card["packages"]["nexuiz"]["skipped"]


def test_missing_package_is_one_line_with_apt_get(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = dataclasses.replace(GAME_MUSIC["hyperrogue"], root=tmp_path / "not-installed")
    monkeypatch.setitem(registry.GAME_MUSIC, "hyperrogue", gone)
    with pytest.raises(DataError, match="apt-get install hyperrogue-music") as info:
        export_game_music(tmp_path / "out", ["hyperrogue"], progress=False)
    assert "\n" not in str(info.value)
    assert main(["data", "game-music", "--packages", "hyperrogue", "--out", str(tmp_path / "out")]) == 2
    assert "apt-get install hyperrogue-music" in capsys.readouterr().err
    assert main(["data", "game-music", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "missing (apt-get install hyperrogue-music)" in listing and "nexuiz-music" in listing

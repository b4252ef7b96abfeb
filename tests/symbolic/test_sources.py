"""Tests of the Freedoom and MMA sources (``notewave data freedoom|mma``) on the real Debian packages.

Needs the system packages ``freedoom`` and ``mma`` (``apt-get install freedoom mma``);
each group of tests is skipped with the reason when its package is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import symusic

from notewave.cli.data import add_cli
from notewave.errors import ConfigError, DataError
from notewave.symbolic.sources import (
    FREEDOOM_WADS,
    SPLITS,
    count_bars,
    export_freedoom,
    export_mma,
    groove_song,
    groove_style,
    library_grooves,
    split_for,
    wad_music_lumps,
)
from notewave.symbolic.sources import freedoom as freedoom_module
from notewave.symbolic.sources import mma as mma_module

needs_freedoom = pytest.mark.skipif(
    not all(path.is_file() for path in FREEDOOM_WADS),
    reason="freedoom not installed (apt-get install freedoom)",
)
needs_mma = pytest.mark.skipif(
    shutil.which("mma") is None or not mma_module.MMA_LIBRARY.is_dir(),
    reason="mma not installed (apt-get install mma)",
)


def written_files(out: Path) -> dict[str, str]:
    """``{file name: split}`` of the .mid files under ``out/<split>/``."""
    return {path.name: split for split in SPLITS for path in (out / split).glob("*.mid")}


def check_card(out: Path) -> dict:
    """The data card in ``out`` matches the files it describes; return data.json."""
    card = json.loads((out / "data.json").read_text())
    files = written_files(out)
    assert sorted(f"{split}/{name}" for name, split in files.items()) == [p["file"] for p in card["pieces"]]
    summary = card["summary"]
    assert summary["pieces"] == len(files)
    assert summary["splits"] == {split: sum(1 for s in files.values() if s == split) for split in SPLITS}
    bars = 0
    for piece in card["pieces"]:
        score = symusic.Score(str(out / piece["file"]))
        assert count_bars(score) == piece["bars"]
        sounding = [t for t in score.tracks if len(t.notes)]
        assert piece["drum_tracks"] == sum(t.is_drum for t in sounding)
        assert piece["notes"] == score.note_num() > 0
        bars += piece["bars"]
    assert summary["bars"] == bars
    assert summary["hours"] == pytest.approx(sum(p["seconds"] for p in card["pieces"]) / 3600, abs=1e-3)
    assert sum(summary["styles"].values()) == len(files)
    text = (out / "DATA_CARD.md").read_text()
    assert (
        f"Pieces: {len(files)} (" in text and f"Bars: {bars};" in text and card["source"]["version"] in text
    )
    return card


@pytest.fixture(scope="module")
def freedoom_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not all(path.is_file() for path in FREEDOOM_WADS):
        pytest.skip("freedoom not installed (apt-get install freedoom)")
    out = tmp_path_factory.mktemp("freedoom")
    export_freedoom(out, progress=False)
    return out


@needs_freedoom
def test_wad_reader_finds_music_lumps():
    lumps = wad_music_lumps(FREEDOOM_WADS[1])
    names = [lump.name for lump in lumps]
    assert len(lumps) >= 30 and "D_RUNNIN" in names and all(name.startswith("D_") for name in names)
    assert all(lump.data[:4] == b"MThd" for lump in lumps)


def test_wad_reader_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.wad"
    bad.write_bytes(b"JUNK" + bytes(20))
    with pytest.raises(DataError, match="not a WAD file") as info:
        wad_music_lumps(bad)
    assert "\n" not in str(info.value)
    truncated = tmp_path / "short.wad"
    truncated.write_bytes(b"IWAD" + (5).to_bytes(4, "little") + (12).to_bytes(4, "little"))
    with pytest.raises(DataError, match="outside the file"):
        wad_music_lumps(truncated)


def test_freedoom_pieces(freedoom_out):
    card = check_card(freedoom_out)
    summary = card["summary"]
    assert summary["pieces"] >= 50 and all(summary["splits"].values())
    assert summary["styles"] == {"game-rock": summary["pieces"]}
    assert summary["pieces_with_drums"] >= 0.8 * summary["pieces"]
    assert card["source"]["licence"].startswith("BSD-3-Clause")
    assert len({piece["sha256"] for piece in card["pieces"]}) == summary["pieces"]  # de-duplicated
    # Files are the lumps byte for byte: tracks, programs and drums untouched.
    piece = next(p for p in card["pieces"] if p["origin"] == "freedoom2.wad:D_RUNNIN")
    lump = next(x for x in wad_music_lumps(FREEDOOM_WADS[1]) if x.name == "D_RUNNIN")
    assert (freedoom_out / piece["file"]).read_bytes() == lump.data
    score = symusic.Score(str(freedoom_out / piece["file"]))
    assert any(t.is_drum and len(t.notes) for t in score.tracks)
    assert sorted(t.program for t in score.tracks if len(t.notes) and not t.is_drum) == sorted(
        piece["programs"]
    )


def test_freedoom_rerun_is_deterministic(freedoom_out):
    (freedoom_out / "train" / "freedoom9_STALE.mid").write_bytes(b"stale")
    files = written_files(freedoom_out)
    before = {name: (freedoom_out / files[name] / name).read_bytes() for name in files if "STALE" not in name}
    export_freedoom(freedoom_out, progress=False)
    files = written_files(freedoom_out)
    assert "freedoom9_STALE.mid" not in files  # stale outputs of an earlier run are removed
    assert {name: (freedoom_out / split / name).read_bytes() for name, split in files.items()} == before
    assert all(split == split_for(Path(name).stem) for name, split in files.items())


def test_freedoom_missing_package(monkeypatch, tmp_path):
    monkeypatch.setattr(freedoom_module, "FREEDOOM_WADS", (tmp_path / "nowhere" / "freedoom1.wad",))
    with pytest.raises(DataError, match="freedoom is not installed.*apt-get install freedoom") as info:
        export_freedoom(tmp_path / "out", progress=False)
    assert "\n" not in str(info.value)


def test_groove_styles_and_charts():
    assert groove_style("BossaNovaSus") == "latin"
    assert groove_style("JazzRockWalk") == "rock-pop"  # the longest prefix wins over "jazz"
    assert groove_style("R&B-BalladPlus") == "ballad"
    assert groove_style("CountryBlues") == "blues"
    assert groove_style("QuickstepIntro") == "dance-show"
    assert groove_style("Trance2") == "groove"
    song, chart = groove_song("Swing")
    assert (song, chart) == groove_song("Swing") and "Groove Swing\n" in song
    assert len(song.strip().splitlines()) == 4 + chart["chart_bars"] and chart["chart_bars"] in (8, 12, 16)


@pytest.fixture(scope="module")
def mma_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("mma") is None or not mma_module.MMA_LIBRARY.is_dir():
        pytest.skip("mma not installed (apt-get install mma)")
    out = tmp_path_factory.mktemp("mma")
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers())
    args = parser.parse_args(
        ["data", "mma", "--out", str(out), "--limit", "4", "--jobs", "2", "--no-progress"]
    )
    assert args.func(args) == 0
    return out


@needs_mma
def test_mma_renders_grooves(mma_out):
    card = check_card(mma_out)
    grooves = [p for p in card["pieces"] if "progression" in p]
    assert [p["groove"] for p in grooves] == [name for _, name in library_grooves()[:4]]
    assert len({p["split_key"] for p in grooves}) == 4  # --limit spans four families
    for piece in grooves:
        score = symusic.Score(str(mma_out / piece["file"]))
        tracks = [t for t in score.tracks if len(t.notes)]
        assert any(t.is_drum for t in tracks), piece["file"]
        assert any(not t.is_drum and t.name.lower().startswith(("bass", "walk")) for t in tracks), piece[
            "file"
        ]
        assert piece["style"] == groove_style(piece["groove"]) != "groove"
    assert card["source"]["licence"] == "GPL-2+"
    examples = [p for p in card["pieces"] if p["file"].split("/")[1].startswith("mma_example_")]
    assert len(examples) >= 20  # the shipped example songs that use a groove


@needs_mma
def test_mma_rerun_uses_cache_and_keeps_splits(mma_out):
    before = {name: (mma_out / split / name).read_bytes() for name, split in written_files(mma_out).items()}
    card = json.loads((mma_out / "data.json").read_text())
    keys = {}
    for piece in card["pieces"]:
        assert keys.setdefault(piece["split_key"], piece["split"]) == piece["split"]  # a family in one split
        assert piece["split"] == split_for(piece["split_key"])

    cache = {path: path.stat().st_mtime_ns for path in (mma_out / ".cache").glob("*.mid")}
    assert len(cache) == 4
    export_mma(mma_out, limit=4, progress=False)
    after = {name: (mma_out / split / name).read_bytes() for name, split in written_files(mma_out).items()}
    assert after == before
    assert {path: path.stat().st_mtime_ns for path in (mma_out / ".cache").glob("*.mid")} == cache


def test_mma_bad_input(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="limit must be a positive"):
        export_mma(tmp_path, limit=0)
    monkeypatch.setattr(mma_module, "MMA_LIBRARY", tmp_path / "no-stdlib")
    with pytest.raises(DataError, match="mma is not installed.*apt-get install mma") as info:
        export_mma(tmp_path / "out", limit=1, progress=False)
    assert "\n" not in str(info.value)

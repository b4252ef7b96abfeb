"""``notewave data renders``: FluidSynth renders of real JSB test chorales with the installed SoundFonts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from notewave.audio.sources import export_renders, plan_renders
from notewave.bridge.soundfont import list_soundfonts
from notewave.cli import main

JSB_TEST = Path(__file__).resolve().parents[2] / "data" / "jsb" / "test"
SR = 32000
SECONDS = 5.0
FONTS = list_soundfonts()

pytestmark = pytest.mark.skipif(not FONTS, reason="no SoundFont installed")


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("renders")
    card = export_renders(
        out, [str(JSB_TEST)], per_piece_fonts=2, max_seconds=SECONDS, limit=2, jobs=2, progress=False
    )
    return out, card


def test_two_chorales_with_each_font_as_mono_flac(renders: tuple[Path, dict]) -> None:
    out, card = renders
    fonts = min(2, len(FONTS))
    files = sorted(out.rglob("*.flac"))
    pieces = sorted(p.stem for p in JSB_TEST.glob("*.mid"))[:2]
    assert len(files) == 2 * fonts and {f.parent.relative_to(out).as_posix() for f in files} == {"jsb/test"}
    assert {f.stem.split("__")[0] for f in files} == set(pieces)
    audio = {}
    for path in files:
        info = sf.info(str(path))
        assert (info.format, info.subtype, info.channels, info.samplerate) == ("FLAC", "PCM_16", 1, SR)
        wav, _ = sf.read(str(path), dtype="float32")
        assert len(wav) == int(SECONDS * SR)
        assert 20 * np.log10(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) == pytest.approx(-20.0, abs=1.0)
        audio[path.stem] = wav
    if fonts == 2:  # the two SoundFonts sound different
        a, b = (wav for stem, wav in sorted(audio.items()) if stem.startswith(f"{pieces[0]}__"))
        assert np.abs(a - b).mean() > 0.01
    entry = card["sources"]["jsb"]
    assert entry["pieces"] == {"test": 2} and entry["renders"] == {"test": 2 * fonts}
    assert entry["hours"]["test"] == pytest.approx(2 * fonts * SECONDS / 3600, abs=1e-3)
    assert card["reverb"] and card["chorus"] and card["max_seconds"] == SECONDS
    assert set(entry["renders_per_font"]) <= set(card["fonts"]) and (out / "README.md").is_file()
    assert sum(entry["renders_per_font"].values()) == 2 * fonts


def test_cache_and_reverb_setting(renders: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = renders
    again = export_renders(
        out, [str(JSB_TEST)], per_piece_fonts=2, max_seconds=SECONDS, limit=2, progress=False
    )
    assert again["run"]["written"] == 0 and again["run"]["cached"] == 2 * min(2, len(FONTS))
    # a GM bank with reverb and chorus sends (the OPL-3 FM bank sends none: wet = dry to 1e-8)
    font = next((f for f in FONTS if f.stem in ("FluidR3_GM", "TimGM6mb")), FONTS[0])
    wet_dry = {}
    for label, effects in (("wet", True), ("dry", False)):
        card = export_renders(
            tmp_path / label, [str(JSB_TEST)], [str(font)], reverb=effects, chorus=effects,
            max_seconds=SECONDS, limit=1, progress=False,
        )  # fmt: skip
        assert card["run"]["written"] == 1 and card["reverb"] is effects
        wet_dry[label] = sf.read(str(next((tmp_path / label).rglob("*.flac"))))[0]
    assert np.abs(wet_dry["wet"] - wet_dry["dry"]).mean() > 0.001


def test_split_folders_are_kept_and_loose_files_split(tmp_path: Path) -> None:
    chorales = sorted(JSB_TEST.glob("*.mid"))[:6]
    for split, files in (("train", chorales[:2]), ("valid", chorales[2:3]), ("test", chorales[3:4])):
        (tmp_path / "split" / split).mkdir(parents=True)
        for f in files:
            shutil.copy(f, tmp_path / "split" / split / f.name)
    (tmp_path / "loose").mkdir()
    for f in chorales[:5]:
        shutil.copy(f, tmp_path / "loose" / f.name)
    plan = plan_renders([str(tmp_path / "split"), str(tmp_path / "loose")], FONTS[:1])
    kept = {(j.source, j.piece): j.split for j in plan}
    assert kept == {
        **{("split", f.stem): "train" for f in chorales[:2]},
        ("split", chorales[2].stem): "valid",
        ("split", chorales[3].stem): "test",
        **{("loose", f.stem): "train" for f in chorales[:4]},
        ("loose", chorales[4].stem): "test",
    }
    assert f"split/train/{chorales[0].stem}__{plan[0].font}.flac" in {j.out_path for j in plan}


def test_cli_renders_and_reports_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["data", "renders", "--out", str(tmp_path), "--max-seconds", "2", "--limit", "1", "--no-progress"]
    assert main([*base, "--midi", str(JSB_TEST), "--soundfont", str(FONTS[0]), "--jobs", "1"]) == 0
    assert "jsb: test 1 pieces / 1 renders" in capsys.readouterr().out
    assert main([*base, "--midi", str(tmp_path / "missing")]) == 2
    assert "MIDI folder not found" in capsys.readouterr().err

"""Codec metrics per package (notewave.audio.codec.metrics: package_clips, evaluate_codec groups) on
real Wesnoth music laid out as ``notewave data game-music`` writes it (``<package>/test/*.flac``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from notewave.audio.codec.data import WESNOTH_MUSIC
from notewave.audio.codec.metrics import (
    evaluate_codec,
    format_group_table,
    format_table,
    opus_available,
    package_clips,
)
from notewave.audio.codec.model import Codec
from notewave.core.audio_io import load_audio
from notewave.errors import AudioError, ConfigError

pytestmark = pytest.mark.skipif(
    not (WESNOTH_MUSIC / "battle-epic.ogg").is_file(),
    reason="needs the real recordings of `apt-get install wesnoth-1.16-music`",
)
TRACKS = {"brass": ["battle-epic.ogg", "northerners.ogg"], "folk": ["love_theme.ogg"]}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two made-up packages of 3 s FLAC excerpts of real tracks (32 kHz mono), plus a train track."""
    base = tmp_path_factory.mktemp("audio")
    for package, names in TRACKS.items():
        for split in ("test", "train"):
            (base / package / split).mkdir(parents=True)
        for name in names:
            wav, _ = load_audio(WESNOTH_MUSIC / name, 32000, offset=10.0, duration=3.0)
            sf.write(base / package / "test" / f"{Path(name).stem}.flac", wav[0], 32000)
        sf.write(base / package / "train" / "other.flac", wav[0], 32000)
    return base


def test_package_clips_and_grouped_metrics(root: Path) -> None:
    clips, names, groups = package_clips(root, 32000, seconds=1.0, per_track=2)
    assert clips.shape == (6, 1, 32000) and groups == ["brass"] * 4 + ["folk"] * 2
    assert all("other" not in n for n in names)  # only the held-out test/ tracks
    codec = Codec.from_pretrained()
    rates = (6.0,) if opus_available() else ()
    result = evaluate_codec(codec, clips, n_q=[4], opus_bitrates=rates, groups=groups)
    assert list(result["groups"]) == ["brass", "folk"]
    assert [g["clips"] for g in result["groups"].values()] == [4, 2] and result["clips"] == 6
    for i, row in enumerate(result["rows"]):
        parts = [g["rows"][i] for g in result["groups"].values()]
        assert {p["system"] for p in parts} == {row["system"]}
        # the mel distance is a mean over equal-length clips: the overall one is the clip-weighted mean
        assert np.isclose(row["mel"], (4 * parts[0]["mel"] + 2 * parts[1]["mel"]) / 6, atol=2e-4)
    brass_only = evaluate_codec(codec, clips[:4], n_q=[4], opus_bitrates=())["rows"][0]
    assert {k: brass_only[k] for k in ("mel", "stft", "si_sdr", "chroma", "perplexity")} == {
        k: result["groups"]["brass"]["rows"][0][k] for k in ("mel", "stft", "si_sdr", "chroma", "perplexity")
    }
    table = format_group_table(result, "mel")
    assert "| brass | folk | all |" in table and len(table.splitlines()) == 2 + len(result["rows"])
    assert "notewave codec, 4 codebooks" in format_table(result["groups"]["folk"])


def test_bad_groups_and_empty_root(root: Path, tmp_path: Path) -> None:
    clips, _, _ = package_clips(root, 32000, seconds=1.0, per_track=1)
    with pytest.raises(ConfigError, match="labels"):
        evaluate_codec(Codec.from_pretrained(), clips, groups=["a"])
    with pytest.raises(AudioError, match="game-music"):
        package_clips(tmp_path, 32000)

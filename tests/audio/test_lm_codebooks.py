"""An audio LM over the first codebooks of a codec with more (``--num-codebooks``), on real music."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from notewave.audio.codec.model import Codec, CodecConfig
from notewave.audio.lm.codec_link import check_codec
from notewave.audio.lm.conditioning import ConditionConfig
from notewave.audio.lm.model import AudioLM
from notewave.audio.lm.train import config_for
from notewave.cli.audio import add_train_audio_lm_cli
from notewave.core.audio_io import load_audio
from notewave.errors import CheckpointError, ConfigError
from notewave.pipelines.sound import SoundGenerator

WESNOTH = Path("/usr/share/games/wesnoth/1.16/data/core/music/battle.ogg")
pytestmark = pytest.mark.skipif(not WESNOTH.is_file(), reason="needs the Debian wesnoth-1.16-music package")


def codec_with(k: int) -> Codec:
    torch.manual_seed(0)
    cfg = {"channels": 4, "dim": 16, "num_codebooks": k, "codebook_size": 64, "dilations": (1,)}
    return Codec(CodecConfig(**cfg)).eval()


def test_lm_reads_the_first_codebooks_of_a_larger_codec(tmp_path: Path) -> None:
    codec = codec_with(3)
    codec.save_pretrained(tmp_path / "codec")
    wav, _ = load_audio(WESNOTH, 32000, offset=20.0, duration=3.0)
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    for i in range(2):
        soundfile.write(audio_dir / f"piece_{i}.wav", wav[0, i * 16000 :], 32000)
    parser = argparse.ArgumentParser()
    add_train_audio_lm_cli(parser.add_subparsers())
    run = tmp_path / "run"
    args = ["audio-lm", "--codec", str(tmp_path / "codec"), "--audio", f"{audio_dir}:demo", "--out", str(run)]
    args += ["--config", "tiny", "--segment", "1.0", "--no-text", "--eval-every", "2", "--batch-size", "2"]
    parsed = parser.parse_args([*args, "--steps", "2", "--num-codebooks", "2"])
    assert parsed.func(parsed) == 0
    lm = AudioLM.from_pretrained(run / "best")
    assert lm.num_codebooks == 2 and lm.config.codec["config"]["num_codebooks"] == 3
    sound = SoundGenerator(lm, Codec.from_pretrained(tmp_path / "codec"))
    prompt = wav[:, :8000]
    out, rate, codes = sound.generate(
        seconds=0.5, style="demo", seed=0, prompt_audio=prompt, progress=False, return_codes=True
    )
    assert rate == 32000 and out.shape[-1] == 16000 and np.isfinite(out).all()
    assert codes.shape[1] == 2  # the LM's codebooks, decoded by the 3-codebook codec
    with pytest.raises(CheckpointError):  # a codec with fewer codebooks than the LM reads
        check_codec(lm.config, codec_with(1))
    with pytest.raises(ConfigError):
        config_for("tiny", codec, conditions=ConditionConfig([]), num_codebooks=4)

"""Growing the shipped 4-codebook codec to 8 codebooks (``--init``) and sparse adversarial training,
on real music (Wesnoth's recorded tracks, Debian ``wesnoth-1.16-music``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from notewave.audio.codec.data import WESNOTH_MUSIC
from notewave.audio.codec.model import DEFAULT_CODEC_CHECKPOINT, Codec
from notewave.audio.codec.train import config_for, grown_codec, train_codec
from notewave.core.audio_io import load_audio
from notewave.errors import ConfigError

SR = 32000


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    wav = load_audio(WESNOTH_MUSIC / "sad.ogg", SR, offset=1.0, duration=1.0)[0]
    return torch.from_numpy(wav).reshape(1, 1, -1)


def test_grown_codec_keeps_the_first_codebooks(clip: torch.Tensor) -> None:
    source = Codec.from_pretrained()
    k, detail = source.config.num_codebooks, source.config.detail_codebooks  # main codebooks, detail ones
    config = dataclasses.replace(source.config, num_codebooks=k + 4)  # the same decoder kind and sizes
    grown = grown_codec(DEFAULT_CODEC_CHECKPOINT, config).eval()
    assert grown.num_codebooks == k + 4 + detail
    flags = [bool(layer.initialized) for layer in grown.quantizer.layers]
    assert flags == [True] * k + [False] * 4  # the new codebooks are k-means initialised in training
    with torch.no_grad():
        assert torch.equal(grown.encode(clip, n_q=k), source.encode(clip, n_q=k))
        assert torch.allclose(grown(clip, n_q=k).audio, source(clip, n_q=k).audio)


def test_grown_codec_refuses_another_layout() -> None:
    with pytest.raises(ConfigError):
        grown_codec(DEFAULT_CODEC_CHECKPOINT, config_for("small", num_codebooks=8))


def test_train_from_init_with_sparse_adversarial_steps(tmp_path: Path) -> None:
    data = tmp_path / "music"
    data.mkdir()
    for name in ["battle-epic", "defeat2", "elf-land", "main_menu", "sad"]:
        (data / f"{name}.ogg").symlink_to(WESNOTH_MUSIC / f"{name}.ogg")
    run = tmp_path / "run"
    summary = train_codec(
        run, [data], config="medium", steps=4, segment=0.25, batch_size=2, eval_every=4, max_seconds=3,
        adversarial=True, adversarial_every=2, disc_filters=4, init=DEFAULT_CODEC_CHECKPOINT,
        overrides={"num_codebooks": Codec.from_pretrained().config.num_codebooks + 2}, precision="fp32",
    )  # fmt: skip
    assert summary["steps"] == 4 and summary["init"] == str(DEFAULT_CODEC_CHECKPOINT)
    history = summary["history"][-1]
    assert "train_disc" in history and "train_adv" in history  # the critic ran (on steps 1 and 3)
    trained, k = Codec.from_pretrained(run / "last"), Codec.from_pretrained().config.num_codebooks
    assert trained.config.num_codebooks == k + 2
    assert all(bool(layer.initialized) for layer in trained.quantizer.layers[:k])
    assert (run / "last" / "discriminator.safetensors").is_file()
    assert json.loads((run / "data_split.json").read_text())["valid"][0].endswith("sad.ogg")
    with pytest.raises(ConfigError):
        train_codec(tmp_path / "bad", [data], adversarial=True, adversarial_every=0, steps=1)

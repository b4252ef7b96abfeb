"""The codec's waveform term (``si_sdr_loss``, ``train codec --si-sdr-weight``) on real recorded
music (Wesnoth): it is minus the benchmark's SI-SDR, skips silent crops, floors hopeless ones, and
a training run with it records the term and its weight."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from notewave.audio.codec.data import WESNOTH_MUSIC
from notewave.audio.codec.losses import si_sdr_loss
from notewave.audio.codec.metrics import si_sdr
from notewave.audio.codec.train import train_codec
from notewave.cli import build_parser
from notewave.core.audio_io import load_audio
from notewave.errors import ConfigError

SR = 32000

pytestmark = pytest.mark.skipif(
    not (WESNOTH_MUSIC / "battle-epic.ogg").is_file(),
    reason="needs the real recordings of `apt-get install wesnoth-1.16-music`",
)


@pytest.fixture(scope="module")
def crops() -> torch.Tensor:
    """Four 0.5 s crops of real orchestral music, mono at 32 kHz: float32 [4, 1, 16000]."""
    wav, _ = load_audio(WESNOTH_MUSIC / "battle-epic.ogg", SR, offset=20.0, duration=2.0)
    return torch.from_numpy(wav).reshape(4, 1, 16000)


def test_si_sdr_loss_is_minus_the_benchmark_measure_on_real_music(crops):
    torch.manual_seed(0)
    noisy = crops + 0.3 * crops.std() * torch.randn_like(crops)
    assert float(si_sdr_loss(noisy, crops)) == pytest.approx(-si_sdr(crops, noisy), abs=0.01)
    assert float(si_sdr_loss(0.5 * crops, crops)) < -60  # scale-invariant: a quieter copy is perfect
    # a silent crop has no SDR and is left out; a hopeless one is floored (no gradient)
    with_silence = torch.cat([crops, torch.zeros(1, 1, 16000)])
    mixed = torch.cat([noisy, torch.randn(1, 1, 16000)])
    expected = float(si_sdr_loss(noisy, crops))
    assert float(si_sdr_loss(mixed, with_silence)) == pytest.approx(expected, abs=1e-4)
    unrelated = torch.randn_like(crops).requires_grad_()
    loss = si_sdr_loss(unrelated, crops)
    loss.backward()
    assert float(loss.detach()) == 30.0 and float(unrelated.grad.abs().max()) == 0.0
    assert float(si_sdr_loss(torch.randn(2, 1, 100), torch.zeros(2, 1, 100))) == 0.0


def test_a_gradient_step_on_the_loss_raises_the_si_sdr(crops):
    torch.manual_seed(1)
    estimate = (0.7 * crops + 0.5 * crops.std() * torch.randn_like(crops)).requires_grad_()
    before = si_sdr(crops, estimate.detach())
    loss = si_sdr_loss(estimate, crops)
    loss.backward()
    with torch.no_grad():
        stepped = estimate - 0.5 * estimate.grad / estimate.grad.abs().max() * crops.std()
    assert si_sdr(crops, stepped) > before + 0.5


def test_training_with_the_waveform_term_records_it(tmp_path: Path):
    data = tmp_path / "music"
    data.mkdir()
    for name in ["battle-epic", "defeat2", "elf-land", "main_menu", "sad"]:
        (data / f"{name}.ogg").symlink_to(WESNOTH_MUSIC / f"{name}.ogg")
    run = tmp_path / "run"
    argv = ["train", "codec", "--audio", str(data), "--out", str(run), "--config", "tiny"]
    argv += ["--batch-size", "2", "--segment", "0.5", "--eval-every", "2", "--max-seconds", "4"]
    args = build_parser().parse_args([*argv, "--steps", "2", "--si-sdr-weight", "0.05"])
    assert args.func(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["si_sdr_weight"] == 0.05
    record = summary["history"][-1]
    assert record["train_neg_si_sdr"] > 0  # an untrained codec is far from the waveform
    with pytest.raises(ConfigError, match="si_sdr_weight"):
        train_codec(tmp_path / "bad", [data], si_sdr_weight=-1.0)

"""The SEANet + RVQ codec, its losses, metrics, training entry point and code files, on real audio.

The real audio is the Wesnoth game music (Debian package ``wesnoth-1.16-music``: produced
orchestral/folk tracks, stereo OGG Vorbis at 44.1 kHz).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from notewave.audio.codec.data import WESNOTH_MUSIC, AudioSet, split_folder
from notewave.audio.codec.files import load_codes
from notewave.audio.codec.losses import (
    MultiScaleMelLoss,
    MultiScaleSTFTDiscriminator,
    MultiScaleSTFTLoss,
    discriminator_hinge_loss,
    feature_matching_loss,
    generator_hinge_loss,
)
from notewave.audio.codec.metrics import (
    bitrate_kbps,
    chroma_fidelity,
    evaluate_codec,
    format_table,
    mel_distance,
    opus_available,
    opus_roundtrip,
    plot_codebook_usage,
    si_sdr,
    stft_distance,
)
from notewave.audio.codec.model import DEFAULT_CODEC_CHECKPOINT, Codec, CodecConfig, encode_audio
from notewave.audio.codec.train import config_for
from notewave.cli.audio import add_train_codec_cli
from notewave.cli.codec import add_codec_cli
from notewave.core.audio_io import load_audio
from notewave.core.checkpoint import write_checkpoint
from notewave.errors import AudioError, CheckpointError, ConfigError, NotewaveError

SR = 32000
HELD_OUT = [
    "defeat.ogg",
    "frantic.ogg",
    "knolls.ogg",
    "northern_mountains.ogg",
    "sad.ogg",
    "the_city_falls.ogg",
    "traveling_minstrels.ogg",
    "wanderer.ogg",
]

pytestmark = pytest.mark.skipif(
    not (WESNOTH_MUSIC / "battle-epic.ogg").is_file(),
    reason="needs the real recordings of `apt-get install wesnoth-1.16-music`",
)


@pytest.fixture(scope="module")
def track() -> Path:
    return WESNOTH_MUSIC / "battle-epic.ogg"


@pytest.fixture(scope="module")
def crop(track: Path) -> torch.Tensor:
    """2 s of real orchestral music, mono at 32 kHz: float32 [1, 1, 64000]."""
    wav, _ = load_audio(track, SR, offset=20.0, duration=2.0)
    return torch.from_numpy(wav)[None]


@pytest.fixture(scope="module")
def trained(crop: torch.Tensor) -> Codec:
    """A tiny codec after a few training steps on the crop (codebooks initialised by k-means)."""
    torch.manual_seed(0)
    codec = Codec(config_for("tiny", dead_code_threshold=0.01)).train()
    opt = torch.optim.AdamW(codec.parameters(), lr=1e-3)
    mel = MultiScaleMelLoss(SR)
    batch = crop.reshape(4, 1, 16000)
    for _ in range(3):
        out = codec(batch)
        loss = mel(out.audio, batch) + out.commit_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return codec.eval()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notewave")
    sub = parser.add_subparsers(dest="command", required=True)
    add_codec_cli(sub)
    train = sub.add_parser("train").add_subparsers(dest="train_command", required=True)
    add_train_codec_cli(train)
    return parser


def _run(*argv: str) -> int:
    args = _parser().parse_args([str(a) for a in argv])
    return args.func(args)


# ---- model ----------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 639, 640, 641, 6401])
def test_exact_lengths_for_any_input_length(n: int) -> None:
    torch.manual_seed(0)
    codec = Codec(config_for("tiny")).eval()
    wav = torch.randn(2, 1, n) * 0.1
    codes = codec.encode(wav)
    assert codes.dtype == torch.int64 and codes.shape == (2, 2, math.ceil(n / 640))
    assert codec.decode(codes).shape == (2, 1, codes.shape[-1] * 640)
    assert codec(wav).audio.shape == (2, 1, n)


def test_default_config_facts() -> None:
    cfg = CodecConfig()
    assert cfg.hop_length == 640 and cfg.sample_rate == 32000
    codec = Codec(config_for("tiny"))
    assert (codec.sample_rate, codec.hop_length, codec.frame_rate) == (32000, 640, 50.0)
    assert (codec.num_codebooks, codec.codebook_size) == (2, 64)
    assert codec.bitrate() == pytest.approx(bitrate_kbps(2, 50.0, 64)) == pytest.approx(0.6)
    assert bitrate_kbps(4, 50.0, 1024) == pytest.approx(2.0)
    with pytest.raises(ConfigError):
        CodecConfig(strides=())
    with pytest.raises(ConfigError):
        config_for("huge")


def test_training_steps_on_real_music_reduce_the_loss(crop: torch.Tensor) -> None:
    torch.manual_seed(0)
    codec = Codec(config_for("tiny", dead_code_threshold=0.01)).train()
    opt = torch.optim.AdamW(codec.parameters(), lr=1e-3)
    mel, stft = MultiScaleMelLoss(SR), MultiScaleSTFTLoss()
    batch = crop[..., :32000].reshape(4, 1, 8000)

    def held_loss() -> float:  # eval mode: no codebook updates, so the numbers are comparable
        codec.eval()
        with torch.no_grad():
            out = codec(batch)
            value = float(mel(out.audio, batch) + stft(out.audio, batch))
        codec.train()
        return value

    losses = []
    for step in range(20):
        out = codec(batch, n_q=2)
        loss = mel(out.audio, batch) + stft(out.audio, batch) + out.commit_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in (0, 19):  # after the first step the RVQ is initialised (k-means)
            losses.append(held_loss())
    assert all(math.isfinite(v) for v in losses)
    assert losses[1] < 0.93 * losses[0]


def test_save_load_round_trip_reproduces_codes(trained: Codec, crop: torch.Tensor, tmp_path: Path) -> None:
    codes = trained.encode(crop)
    trained.save_pretrained(tmp_path / "codec")
    loaded = Codec.from_pretrained(tmp_path / "codec")
    assert torch.equal(loaded.encode(crop), codes)
    assert torch.allclose(loaded.decode(codes), trained.decode(codes), atol=1e-6)
    assert loaded.fingerprint() == trained.fingerprint()
    assert json.loads((tmp_path / "codec" / "config.json").read_text())["kind"] == "codec"
    trained.save_pretrained(tmp_path / "half", half=True)
    half = Codec.from_pretrained(tmp_path / "half")
    assert next(half.parameters()).dtype == torch.float32
    assert (half.encode(crop) == codes).float().mean() > 0.9


def test_loading_something_else_is_a_checkpoint_error(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "lm", {"w": torch.zeros(2)}, {"kind": "midi-lm", "vocab_size": 10})
    with pytest.raises(CheckpointError, match="not a usable codec"):
        Codec.from_pretrained(tmp_path / "lm")
    with pytest.raises(CheckpointError):
        Codec.from_pretrained(tmp_path / "missing")


def test_fewer_codebooks_decode(trained: Codec, crop: torch.Tensor) -> None:
    codes = trained.encode(crop)
    assert torch.equal(trained.encode(crop, n_q=1), codes[:, :1])
    one = trained.decode(codes[:, :1])
    assert one.shape == trained.decode(codes).shape == (1, 1, 64000)
    assert torch.isfinite(one).all() and one.abs().max() <= 1.0


@pytest.mark.parametrize(
    "bad",
    [
        lambda c: c + 64,  # code == codebook_size
        lambda c: c - 1 - c,  # -1
        lambda c: torch.cat([c, c[:, :1]], 1),  # K + 1 codebooks
        lambda c: c[:, :0],  # no codebook
        lambda c: c[0],  # [K, T]
        lambda c: c.float(),
        lambda c: c[..., :0],  # no frames
    ],
)
def test_bad_codes_are_config_errors(trained: Codec, crop: torch.Tensor, bad) -> None:
    with pytest.raises(ConfigError):
        trained.decode(bad(trained.encode(crop)))


def test_bad_audio(trained: Codec, track: Path) -> None:
    with pytest.raises(AudioError, match="empty"):
        trained.encode(torch.zeros(1, 1, 0))
    with pytest.raises(AudioError, match="NaN"):
        trained.encode(torch.tensor([[[0.1, float("nan"), 0.2]]]))
    with pytest.raises(AudioError, match="mono"):
        trained.encode(torch.zeros(1, 2, 640))
    with pytest.raises(AudioError):
        trained.encode(torch.zeros(1, 1, 640, dtype=torch.int16))
    with pytest.raises(ConfigError, match="44100 Hz"):
        trained.encode(torch.zeros(1, 1, 640), sample_rate=44100)
    with pytest.raises(ConfigError):
        trained.encode(torch.zeros(1, 1, 640), n_q=3)
    with pytest.raises(AudioError):
        encode_audio(trained, np.zeros((2, 0), np.float32), sample_rate=44100)
    with pytest.raises(AudioError):
        encode_audio(trained, np.zeros(100, np.float32))  # no rate for an array
    with pytest.raises(AudioError):
        encode_audio(trained, track.with_name("no_such_track.ogg"))


def test_encode_audio_downmixes_and_resamples(trained: Codec, track: Path) -> None:
    # the real file: stereo OGG at 44.1 kHz -> mono 32 kHz
    assert sf.info(str(track)).channels == 2 and sf.info(str(track)).samplerate == 44100
    codes = encode_audio(trained, track, offset=10.0, duration=1.0)
    assert codes.shape == (1, 2, math.ceil(32000 / 640))
    stereo, _ = load_audio(track, None, mono=False, offset=10.0, duration=1.0)
    from_array = encode_audio(trained, stereo, sample_rate=44100)
    assert from_array.shape == codes.shape
    assert (from_array == codes).float().mean() > 0.9


# ---- code files and CLI -----------------------------------------------------------------
def test_npz_cli_round_trip(trained: Codec, track: Path, tmp_path: Path, capsys) -> None:
    ckpt = trained.save_pretrained(tmp_path / "ckpt")
    stereo, rate = load_audio(track, None, mono=False, offset=30.0, duration=1.23)
    sf.write(tmp_path / "in.wav", stereo.T, rate)
    assert _run("codec", "encode", tmp_path / "in.wav", tmp_path / "codes.npz", "--checkpoint", ckpt) == 0
    with np.load(tmp_path / "codes.npz") as data:
        assert data["codes"].dtype == np.int16 and data["codes"].shape == (2, math.ceil(1.23 * SR / 640))
        assert int(data["sample_rate"]) == SR and float(data["frame_rate"]) == 50.0
    assert _run("codec", "decode", tmp_path / "codes.npz", tmp_path / "out.wav", "--checkpoint", ckpt) == 0
    info = sf.info(str(tmp_path / "out.wav"))
    assert info.samplerate == SR and info.channels == 1 and info.frames == round(1.23 * SR)
    assert (
        _run("codec", "encode", tmp_path / "in.wav", tmp_path / "k1.npz", "--checkpoint", ckpt, "--n-q", "1")
        == 0
    )
    codes, meta = load_codes(tmp_path / "k1.npz", trained)
    assert codes.shape[0] == 1 and meta["num_samples"] == round(1.23 * SR)
    assert "kbps" in capsys.readouterr().out


def test_codes_of_another_codec_are_refused(trained: Codec, crop: torch.Tensor, tmp_path: Path) -> None:
    from notewave.audio.codec.files import save_codes

    save_codes(tmp_path / "codes.npz", trained.encode(crop), trained)
    torch.manual_seed(1)
    other = Codec(config_for("tiny", codebook_size=32))
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(NotewaveError, match="other codes"):
        _run(
            "codec", "decode", tmp_path / "codes.npz", tmp_path / "x.wav", "--checkpoint", tmp_path / "other"
        )
    retrained = Codec(trained.config)  # same config, other weights
    with pytest.raises(NotewaveError, match="other codes"):
        load_codes(tmp_path / "codes.npz", retrained)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(NotewaveError):
        load_codes(tmp_path / "junk.npz", trained)


def test_train_codec_entry_point_and_resume(tmp_path: Path) -> None:
    data = tmp_path / "music"
    data.mkdir()
    for name in ["battle-epic", "defeat2", "elf-land", "main_menu", "sad"]:
        (data / f"{name}.ogg").symlink_to(WESNOTH_MUSIC / f"{name}.ogg")
    run = tmp_path / "run"
    common = ["train", "codec", "--audio", data, "--out", run, "--config", "tiny", "--batch-size", "2"]
    common += ["--segment", "0.5", "--eval-every", "2", "--max-seconds", "4"]
    assert _run(*common, "--steps", "2") == 0
    assert (run / "best" / "model.safetensors").is_file() and (run / "last" / "trainer.json").is_file()
    split = json.loads((run / "data_split.json").read_text())
    assert [Path(f).name for f in split["valid"]] == ["sad.ogg"] and len(split["train"]) == 4
    assert _run(*common, "--steps", "3", "--resume") == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 3 and math.isfinite(summary["history"][-1]["val_loss"])
    assert Codec.from_pretrained(run / "last").num_codebooks == 2


def test_wesnoth_held_out_tracks() -> None:
    train, valid = split_folder(WESNOTH_MUSIC)
    assert [f.name for f in valid] == HELD_OUT and len(train) == 33


def test_audio_set_crops(crop: torch.Tensor) -> None:
    audio = AudioSet([crop[0, 0].numpy(), np.zeros(100, np.float32)], ["music", "short"], SR)
    batch = audio.sample_batch(3, 8000, torch.Generator().manual_seed(0))
    assert batch.shape == (3, 1, 8000) and batch.abs().max() <= 1.0
    assert (batch.pow(2).mean(-1).sqrt() > 1e-3).all()  # silence is redrawn
    assert audio.eval_clips(0.5, 2).shape == (4, 1, 16000)


# ---- losses and metrics ---------------------------------------------------------------
def test_losses_and_discriminator(crop: torch.Tensor) -> None:
    x = crop[..., :8000].repeat(2, 1, 1)
    noisy = x + 0.05 * torch.randn_like(x)
    assert float(MultiScaleMelLoss(SR)(x, x)) == 0.0
    assert float(MultiScaleSTFTLoss()(x, x)) < 1e-6
    assert float(MultiScaleMelLoss(SR)(noisy, x)) > 0.1
    disc = MultiScaleSTFTDiscriminator(filters=8)
    real_logits, real_feats = disc(x)
    fake_logits, fake_feats = disc(noisy.requires_grad_())
    assert len(real_logits) == 3 and real_logits[0].shape[:2] == (2, 1)
    d_loss = discriminator_hinge_loss(real_logits, fake_logits)
    g_loss = generator_hinge_loss(fake_logits) + feature_matching_loss(real_feats, fake_feats)
    assert float(feature_matching_loss(real_feats, real_feats).detach()) == 0.0
    (d_loss + g_loss).backward()
    assert noisy.grad is not None and torch.isfinite(noisy.grad).all()


def test_metric_sanity(crop: torch.Tensor, tmp_path: Path) -> None:
    x = crop[0, 0].numpy()
    noise = np.random.default_rng(0).normal(0, 0.1, x.shape).astype(np.float32)
    assert si_sdr(x, x) > 60
    assert si_sdr(x, 0.5 * x) > 60  # scale-invariant
    assert si_sdr(x, noise) < -10
    assert si_sdr(x, x + 0.1 * noise) > si_sdr(x, x + noise)
    assert mel_distance(x, x, SR) == 0.0 and stft_distance(x, x) < 1e-6
    assert mel_distance(x, noise, SR) > 1.0
    with pytest.raises(AudioError):
        mel_distance(x, x[:-1], SR)
    codes = torch.randint(0, 64, (2, 2, 50))
    png = plot_codebook_usage(codes, 64, tmp_path / "usage.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_chroma_fidelity_reads_pitch_on_a_real_render(jsb_test_files: list[Path]) -> None:
    """A chorale render keeps its own chroma (1.0) and survives gain; the same notes a semitone
    higher, or noise, score far lower, and Opus at 6 kbps keeps most of it."""
    from symusic import Score

    from notewave.bridge.render import render_midi

    score = Score(str(jsb_test_files[0]))
    up = score.copy()
    for track in up.tracks:
        for note in track.notes:
            note.pitch += 1
    x, y = (render_midi(s, SR, normalize="loudness")[0][0, SR : 4 * SR] for s in (score, up))
    noise = np.random.default_rng(0).normal(0, 0.05, x.shape).astype(np.float32)
    assert chroma_fidelity(x, x, SR) == pytest.approx(1.0)
    assert chroma_fidelity(x, 0.3 * x, SR) == pytest.approx(1.0)
    shifted, noisy = chroma_fidelity(x, y, SR), chroma_fidelity(x, noise, SR)
    assert shifted < 0.3 and noisy < 0.3
    if opus_available():
        assert chroma_fidelity(x, opus_roundtrip(x, SR, 6.0)[0][0], SR) > 0.5


@pytest.mark.skipif(not opus_available(), reason="opus-tools (opusenc/opusdec) not installed")
def test_opus_comparison(trained: Codec, crop: torch.Tensor) -> None:
    x = crop[0, 0].numpy()
    decoded, kbps, file_kbps = opus_roundtrip(x, SR, 6.0)
    assert decoded.shape == (1, x.shape[-1]) and 3.0 < kbps < 7.0 and file_kbps > kbps
    noise = np.random.default_rng(0).normal(0, 0.1, x.shape).astype(np.float32)
    assert mel_distance(x, decoded[0], SR) < mel_distance(x, noise, SR) and si_sdr(x, decoded[0]) > -5
    result = evaluate_codec(trained, crop[..., :32000].reshape(2, 1, 16000), n_q=[1, 2], opus_bitrates=(6.0,))
    assert [r["system"].split(",")[0] for r in result["rows"]] == ["notewave codec"] * 2 + [
        "Opus --bitrate 6"
    ]
    assert result["rows"][0]["kbps"] == pytest.approx(0.3) and len(result["rows"][1]["perplexity"]) == 2
    assert "Opus --bitrate 6" in format_table(result) and 0.0 <= result["rows"][2]["chroma"] <= 1.0


@pytest.mark.skipif(not (DEFAULT_CODEC_CHECKPOINT / "config.json").is_file(), reason="no shipped codec")
def test_shipped_codec_on_held_out_music() -> None:
    codec = Codec.from_pretrained()
    wav, _ = load_audio(WESNOTH_MUSIC / "wanderer.ogg", codec.sample_rate, offset=60.0, duration=3.0)
    x = torch.from_numpy(wav)[None]
    codes = codec.encode(x)
    assert codes.shape == (1, codec.num_codebooks, math.ceil(3.0 * codec.frame_rate))
    y = codec.decode(codes)[..., : x.shape[-1]]
    noise = torch.randn_like(x) * x.std()
    assert mel_distance(x, y, codec.sample_rate) < 0.5 * mel_distance(x, noise, codec.sample_rate)

"""The codec's detail stream (``--detail-codebooks``): extra codebooks after the main RVQ's, on real
music (Debian ``wesnoth-1.16-music``); the main codes, and an audio LM reading them, stay as they were."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from notewave.audio.codec.data import WESNOTH_MUSIC
from notewave.audio.codec.files import load_codes, save_codes
from notewave.audio.codec.metrics import mel_distance
from notewave.audio.codec.model import DEFAULT_CODEC_CHECKPOINT, Codec
from notewave.audio.codec.train import _from_init, config_for, grown_codec, train_codec
from notewave.audio.lm.codec_link import check_codec
from notewave.audio.lm.train import config_for as lm_config_for
from notewave.core.audio_io import load_audio
from notewave.errors import CheckpointError, ConfigError

SR = 32000
pytestmark = pytest.mark.skipif(
    not WESNOTH_MUSIC.is_dir(), reason="needs the Debian wesnoth-1.16-music package"
)
SIZES = {"decoder": "fourier", "decoder_dim": 32, "decoder_layers": 2, "detail_codebooks": 2, "detail_dim": 8}


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    wav = load_audio(WESNOTH_MUSIC / "wanderer.ogg", SR, offset=40.0, duration=2.3)[0]
    return torch.from_numpy(wav).reshape(1, 1, -1)


def detail_codec(clip: torch.Tensor) -> Codec:
    """A tiny codec with 2 detail codebooks whose codebooks are k-means initialised on ``clip``."""
    torch.manual_seed(0)
    codec = Codec(config_for("tiny", **{**SIZES, "detail_layers": 1})).train()
    codec(clip, n_q=codec.num_codebooks)
    return codec.eval()


def test_codes_lengths_and_chunking_with_a_detail_stream(clip: torch.Tensor) -> None:
    codec = detail_codec(clip)
    main = codec.config.num_codebooks
    assert codec.num_codebooks == main + 2 and codec.bitrate() == pytest.approx(codec.bitrate(main) * 2)
    codes = codec.encode(clip)
    frames = -(-clip.shape[-1] // codec.hop_length)
    assert codes.shape == (1, main + 2, frames)
    # the first K codebooks are the main stream's whatever is asked for; the detail ones follow them
    assert torch.equal(codec.encode(clip, n_q=main), codes[:, :main])
    assert torch.equal(codec.encode(clip, n_q=main + 1), codes[:, : main + 1])
    # windows of 0.4 s with the encoders' receptive fields either side give the one-shot codes and audio
    assert torch.equal(codec.encode(clip, chunk_seconds=0.4), codec.encode(clip, chunk_seconds=None))
    # main codes alone need only the main encoder's context: the windows of a codec without detail
    plain = Codec(dataclasses.replace(codec.config, detail_codebooks=0))
    main_spans = codec.chunk_spans(frames, 0.4, detail=False)
    assert main_spans == plain.chunk_spans(frames, 0.4) != codec.chunk_spans(frames, 0.4)
    assert torch.equal(codec.encode(clip, n_q=main, chunk_seconds=0.4), codes[:, :main])
    whole = codec.decode(codes, chunk_seconds=None)
    assert torch.allclose(codec.decode(codes, chunk_seconds=0.4), whole, atol=1e-5)
    # every count of codebooks decodes; the detail codebooks change the audio
    for k in range(1, main + 3):
        audio = codec.decode(codes[:, :k])
        assert audio.shape == whole.shape and torch.isfinite(audio).all()
    assert not torch.allclose(codec.decode(codes[:, :main]), whole)
    # audio of one frame or less (shorter than the detail STFT's half window) still encodes
    for n in (1, codec.hop_length):
        short = codec.encode(clip[..., :n])
        assert short.shape == (1, main + 2, 1) and torch.isfinite(codec.decode(short)).all()
    for bad in (0, main + 3, True):
        with pytest.raises(ConfigError, match="n_q"):
            codec.encode(clip, n_q=bad)
    with pytest.raises(ConfigError):
        codec.decode(torch.zeros(1, main + 3, 4, dtype=torch.long))


def test_config_hashes_and_code_files(tmp_path: Path, clip: torch.Tensor) -> None:
    codec = detail_codec(clip)
    plain = Codec(dataclasses.replace(codec.config, detail_codebooks=0))
    assert "detail_dim" in codec.config.to_dict() and "detail_dim" not in plain.config.to_dict()
    codec.save_pretrained(tmp_path / "c")
    loaded = Codec.from_pretrained(tmp_path / "c")
    assert loaded.config == codec.config and loaded.fingerprint() == codec.fingerprint()
    for bad in [{"detail_dim": 0}, {"detail_codebooks": -1}, {"decoder": "seanet"}]:
        with pytest.raises(ConfigError):
            dataclasses.replace(codec.config, **bad)
    # a code file with detail codebooks decodes with the same detail stream only ...
    save_codes(tmp_path / "all.npz", codec.encode(clip), codec)
    save_codes(tmp_path / "main.npz", codec.encode(clip, n_q=2), codec)
    codes, meta = load_codes(tmp_path / "all.npz")  # the file's own config allows K + detail codebooks
    assert codes.shape[0] == 4 and meta["detail_hash"] == codec.fingerprint()["detail_hash"]
    assert torch.equal(load_codes(tmp_path / "all.npz", loaded)[0], codes)
    other = detail_codec(clip)
    with torch.no_grad():
        next(other.detail.encoder.parameters()).add_(0.01)
    assert other.fingerprint()["codes_hash"] == codec.fingerprint()["codes_hash"]
    with pytest.raises(ConfigError, match="detail"):
        load_codes(tmp_path / "all.npz", other)
    # ... while the main codebooks alone decode with any codec on the same main codes
    assert load_codes(tmp_path / "main.npz", other)[0].shape[0] == 2


def plain_copy(codec: Codec, folder: Path) -> Path:
    """``codec`` without its detail stream (the decoder's main input weights kept), saved to ``folder``."""
    plain = Codec(dataclasses.replace(codec.config, detail_codebooks=0))
    state = {k: v for k, v in codec.state_dict().items() if not k.startswith("detail.")}
    state["decoder.embed.weight"] = state["decoder.embed.weight"][:, : codec.config.dim]
    plain.load_state_dict(state)
    return plain.save_pretrained(folder)


@pytest.mark.skipif(not (DEFAULT_CODEC_CHECKPOINT / "config.json").is_file(), reason="no shipped codec")
def test_the_shipped_detail_codebooks_keep_the_main_codes_and_lower_the_mel_distance(
    clip: torch.Tensor,
) -> None:
    shipped = Codec.from_pretrained().eval()
    main = shipped.config.num_codebooks
    assert shipped.detail is not None and shipped.num_codebooks > main
    with torch.no_grad():
        codes = shipped.encode(clip)
        with_detail = mel_distance(clip, shipped.decode(codes)[..., : clip.shape[-1]], SR)
        without = mel_distance(clip, shipped.decode(codes[:, :main])[..., : clip.shape[-1]], SR)
    assert with_detail < 0.8 * without, (with_detail, without)
    # an audio LM models the main codebooks only (codes_hash does not cover the detail stream's)
    lm = lm_config_for("tiny", shipped)
    assert (
        lm.num_codebooks == main
        and check_codec(lm, shipped)["codes_hash"] == shipped.fingerprint()["codes_hash"]
    )
    with pytest.raises(ConfigError, match="main codebooks"):
        lm_config_for("tiny", shipped, num_codebooks=main + 1)
    with pytest.raises(CheckpointError, match="codec gives"):
        check_codec(dataclasses.replace(lm, num_codebooks=main + 1), shipped)
    # grown with other detail sizes, the detail stream starts fresh; with the same, it is kept
    same = grown_codec(DEFAULT_CODEC_CHECKPOINT, shipped.config, source=shipped)
    other = grown_codec(DEFAULT_CODEC_CHECKPOINT, dataclasses.replace(shipped.config, detail_layers=4))
    embed = shipped.detail.encoder.embed.weight
    assert torch.equal(same.detail.encoder.embed.weight, embed)
    assert not torch.equal(other.detail.encoder.embed.weight, embed)
    assert not any(bool(layer.initialized) for layer in other.detail.quantizer.layers)


@pytest.mark.skipif(not (DEFAULT_CODEC_CHECKPOINT / "config.json").is_file(), reason="no shipped codec")
def test_a_detail_stream_added_to_a_trained_codec(tmp_path: Path, clip: torch.Tensor) -> None:
    """Grown from a trained codec without one, the decoder starts where it was; a short frozen-codes
    run keeps every main code and the detail codebooks then lower the held-out mel distance."""
    init = plain_copy(Codec.from_pretrained(), tmp_path / "plain")
    source = Codec.from_pretrained(init).eval()
    main = source.num_codebooks
    grown = _from_init(init, "medium", {"detail_codebooks": 2, "detail_layers": 1}, True).eval()
    assert grown.num_codebooks == main + 2
    assert grown.fingerprint()["codes_hash"] == source.fingerprint()["codes_hash"]
    with torch.no_grad():
        codes = grown.encode(clip)
        assert torch.equal(codes[:, :main], source.encode(clip))
        reference = source.decode(codes[:, :main])
        assert torch.allclose(grown.decode(codes), reference, atol=1e-4)  # zero input weights for detail
        assert torch.allclose(grown.decode(codes[:, :4]), source.decode(codes[:, :4]), atol=1e-4)
    data = tmp_path / "music"
    data.mkdir()
    for name in ["battle-epic", "defeat2", "elf-land", "main_menu", "sad"]:
        (data / f"{name}.ogg").symlink_to(WESNOTH_MUSIC / f"{name}.ogg")
    overrides = {"detail_codebooks": 2, "detail_layers": 1}
    kwargs = dict(config="medium", segment=0.5, batch_size=4, max_seconds=20, init=init)
    kwargs |= dict(overrides=overrides, freeze_codes=True, precision="fp32", lr=1e-3)
    summary = train_codec(tmp_path / "run", [data], steps=30, eval_every=30, **kwargs)
    trained = Codec.from_pretrained(tmp_path / "run" / "last")
    assert summary["codes_hash"] == source.fingerprint()["codes_hash"]
    assert f"val_mel_{main}codebooks" in summary["history"][-1]
    with torch.no_grad():
        codes = trained.encode(clip)
        assert torch.equal(codes[:, :main], source.encode(clip))  # the main codes did not move
        with_detail = mel_distance(clip, trained.decode(codes)[..., : clip.shape[-1]], SR)
        without = mel_distance(clip, trained.decode(codes[:, :main])[..., : clip.shape[-1]], SR)
    assert with_detail < without, (with_detail, without)


def test_detail_features_do_not_see_the_16_bit_noise_floor(clip: torch.Tensor) -> None:
    """Training audio is held as int16; a file decoded to float (this Ogg) has no quantization floor.
    The detail encoder's log magnitudes must come out nearly the same for both (session 16: with a
    1e-5 floor they differed by several nats in empty bands and the detail codes got worse)."""
    encoder = detail_codec(clip).detail.encoder
    rounded = torch.round(clip * 32767) / 32767
    hooked: list[torch.Tensor] = []
    handle = encoder.embed.register_forward_pre_hook(lambda _m, args: hooked.append(args[0]))
    main = torch.zeros(1, encoder.embed.in_features - encoder.n_fft // 2 - 1, 8)
    for wav in (clip, rounded):
        encoder(wav[..., : 8 * 640], main)
    handle.remove()
    gap = (hooked[0] - hooked[1]).abs()
    assert float(gap.max()) < 0.5 and float(gap.mean()) < 0.05, (float(gap.max()), float(gap.mean()))

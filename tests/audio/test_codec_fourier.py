"""The Vocos-style Fourier decoder (``--decoder fourier``) and decoder-only training on a trained
codec's frozen codes (``--freeze-codes``), on real music (Debian ``wesnoth-1.16-music``)."""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path

import pytest
import torch

from notewave.audio.codec.data import WESNOTH_MUSIC
from notewave.audio.codec.fourier import FourierDecoder
from notewave.audio.codec.metrics import mel_distance
from notewave.audio.codec.model import DEFAULT_CODEC_CHECKPOINT, Codec, CodecConfig
from notewave.audio.codec.train import _from_init, config_for, train_codec
from notewave.audio.lm.codec_link import check_codec, codec_identity
from notewave.core.audio_io import load_audio
from notewave.errors import CheckpointError, ConfigError

SR = 32000
pytestmark = pytest.mark.skipif(
    not WESNOTH_MUSIC.is_dir(), reason="needs the Debian wesnoth-1.16-music package"
)


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    wav = load_audio(WESNOTH_MUSIC / "wanderer.ogg", SR, offset=40.0, duration=2.3)[0]
    return torch.from_numpy(wav).reshape(1, 1, -1)


def fourier_codec(name: str = "tiny", **sizes: int) -> Codec:
    torch.manual_seed(0)
    return Codec(
        config_for(name, **{"decoder": "fourier", "decoder_dim": 32, "decoder_layers": 2, **sizes})
    ).eval()


def test_exact_lengths_and_chunked_decode_on_real_music(clip: torch.Tensor) -> None:
    codec = fourier_codec()
    assert isinstance(codec.decoder, FourierDecoder)
    codes = codec.encode(clip)
    frames = -(-clip.shape[-1] // codec.hop_length)
    assert codes.shape == (1, codec.num_codebooks, frames)
    whole = codec.decode(codes, chunk_seconds=None)
    assert whole.shape == (1, 1, frames * codec.hop_length) and torch.isfinite(whole).all()
    # windows of 0.4 s with the decoder's receptive field either side give the one-shot audio
    assert torch.allclose(codec.decode(codes, chunk_seconds=0.4), whole, atol=1e-5)
    assert torch.allclose(
        codec.decode(codes[:, :1]), codec.decode(codes[:, :1], chunk_seconds=None), atol=1e-5
    )


def test_config_round_trip_and_errors(tmp_path: Path, clip: torch.Tensor) -> None:
    codec = fourier_codec()
    codec.save_pretrained(tmp_path / "c")
    loaded = Codec.from_pretrained(tmp_path / "c")
    assert loaded.config == codec.config and loaded.fingerprint() == codec.fingerprint()
    assert torch.equal(loaded.decode(loaded.encode(clip)), codec.decode(codec.encode(clip)))
    # a SEANet codec's config (and hash) has no fourier fields: checkpoints saved before them load as before
    assert "istft_hop" not in CodecConfig().to_dict()
    assert CodecConfig(strides=(4, 4, 4, 4)).hop_length == 256  # fourier sizes bind fourier decoders only
    base = config_for("tiny")
    bad_sizes = [{"istft_hop": 300}, {"istft_n_fft": 1281}, {"decoder_layers": 0}, {"istft_n_fft": 320}]
    for bad in [{"decoder": "wavenet"}, *bad_sizes]:
        with pytest.raises(ConfigError):
            dataclasses.replace(base, **{"decoder": "fourier", **bad})


def test_bfloat16_autocast_trains_on_float32_codes(clip: torch.Tensor) -> None:
    codec = fourier_codec()
    codec.freeze_codes()
    codec.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = codec(clip, n_q=2)
    assert out.audio.dtype == torch.float32 and torch.isfinite(out.audio).all()
    assert torch.equal(out.codes, codec.encode(clip))  # the codes a float32 encode gives
    out.audio.pow(2).mean().backward()
    assert codec.decoder.head.weight.grad is not None


def test_code_files_follow_the_codes_not_the_decoder(clip: torch.Tensor, tmp_path: Path) -> None:
    from notewave.audio.codec.files import load_codes, save_codes

    torch.manual_seed(0)
    seanet = Codec(config_for("tiny")).eval()
    save_codes(tmp_path / "codes.npz", seanet.encode(clip), seanet)
    fourier = fourier_codec()
    fourier.encoder.load_state_dict(seanet.encoder.state_dict())
    fourier.quantizer.load_state_dict(seanet.quantizer.state_dict())
    codes, meta = load_codes(tmp_path / "codes.npz", fourier)  # same codes, another decoder
    assert meta["codes_hash"] == fourier.fingerprint()["codes_hash"]
    assert torch.equal(codes.reshape(seanet.encode(clip).shape), seanet.encode(clip))
    with torch.no_grad():
        next(fourier.encoder.parameters()).add_(0.01)  # another encoder: other codes
    with pytest.raises(ConfigError, match="other codes"):
        load_codes(tmp_path / "codes.npz", fourier)


@pytest.mark.skipif(not (DEFAULT_CODEC_CHECKPOINT / "config.json").is_file(), reason="no shipped codec")
def test_decoder_trained_on_the_frozen_codes_of_the_shipped_codec(tmp_path: Path, clip: torch.Tensor) -> None:
    shipped = Codec.from_pretrained()
    data = tmp_path / "music"
    data.mkdir()
    for name in ["battle-epic", "defeat2", "elf-land", "main_menu", "sad"]:
        (data / f"{name}.ogg").symlink_to(WESNOTH_MUSIC / f"{name}.ogg")
    fields = {k: getattr(shipped.config, k) for k in ("channels", "dim", "num_codebooks", "codebook_size")}
    sizes = {"decoder": "fourier", "decoder_dim": 64, "decoder_layers": 2}
    kwargs = dict(config="medium", segment=0.5, batch_size=4, max_seconds=20, init=DEFAULT_CODEC_CHECKPOINT)
    kwargs |= dict(overrides={**fields, **sizes}, freeze_codes=True, precision="fp32", lr=2e-3)
    summary = train_codec(tmp_path / "run", [data], steps=40, eval_every=40, **kwargs)
    trained = Codec.from_pretrained(tmp_path / "run" / "last")
    assert trained.config.decoder == "fourier" and summary["freeze_codes"]
    # every code is what the shipped codec gives: the encoder and RVQ did not move
    k = shipped.config.num_codebooks  # the main codes (a new decoder gets a fresh detail stream)
    assert torch.equal(trained.encode(clip, n_q=k), shipped.encode(clip, n_q=k))
    assert trained.fingerprint()["codes_hash"] == shipped.fingerprint()["codes_hash"] == summary["codes_hash"]
    assert trained.fingerprint()["weights_hash"] != shipped.fingerprint()["weights_hash"]
    # 40 steps of the decoder alone bring a fresh one's held-out mel distance well down
    fresh = fourier_codec("medium", **fields, **sizes)
    fresh.encoder.load_state_dict(shipped.encoder.state_dict())
    fresh.quantizer.load_state_dict(shipped.quantizer.state_dict())
    codes = shipped.encode(clip, n_q=k)
    before = mel_distance(clip, fresh.decode(codes)[..., : clip.shape[-1]], SR)
    after = mel_distance(clip, trained.decode(codes)[..., : clip.shape[-1]], SR)
    assert after < 0.8 * before, (before, after)
    # an audio LM recorded with the shipped codec's codes_hash accepts the retrained decoder ...
    lm_config = types.SimpleNamespace(
        codec=codec_identity(shipped), num_codebooks=4, codebook_size=shipped.codebook_size,
        sample_rate=shipped.sample_rate, frame_rate=shipped.frame_rate,
    )  # fmt: skip
    assert check_codec(lm_config, trained)["codes_hash"] == summary["codes_hash"]
    # ... and refuses a codec with other codes; one recorded before codes_hash compares the whole codec
    other = fourier_codec("medium", **fields)
    with pytest.raises(CheckpointError, match="codes_hash"):
        check_codec(lm_config, other)
    lm_config.codec = {k: v for k, v in lm_config.codec.items() if k != "codes_hash"}
    with pytest.raises(CheckpointError, match="config_hash|weights_hash"):
        check_codec(lm_config, trained)
    with pytest.raises(ConfigError, match="freeze_codes"):
        train_codec(tmp_path / "bad", [data], steps=1, freeze_codes=True)
    with pytest.raises(ConfigError, match="codebook_size"):  # frozen codes cannot change the RVQ
        train_codec(tmp_path / "bad", [data], steps=1, **{**kwargs, "overrides": {"codebook_size": 512}})
    # a frozen run resumes frozen without being told, and --init of a fourier codec keeps its decoder
    resumed = train_codec(tmp_path / "run", [data], steps=44, eval_every=44, resume=True, **kwargs)
    assert resumed["freeze_codes"] and resumed["steps"] == 44
    resumed_codec = Codec.from_pretrained(tmp_path / "run" / "last")
    assert torch.equal(resumed_codec.encode(clip, n_q=k), shipped.encode(clip, n_q=k))
    regrown = _from_init(tmp_path / "run" / "last", "medium", {"num_codebooks": 8}, False)
    assert isinstance(regrown.decoder, FourierDecoder) and regrown.config.decoder_dim == 64


@pytest.mark.skipif(not (DEFAULT_CODEC_CHECKPOINT / "config.json").is_file(), reason="no shipped codec")
def test_a_deeper_decoder_grown_from_the_shipped_codec_starts_where_it_was(clip: torch.Tensor) -> None:
    """``--init`` with more ``--decoder-layers`` of the same width keeps every trained block and
    appends blocks with a zero residual scale: the same codes and, to the sample, the same audio."""
    shipped = Codec.from_pretrained().eval()
    layers = shipped.config.decoder_layers
    deeper = _from_init(DEFAULT_CODEC_CHECKPOINT, "medium", {"decoder_layers": layers + 2}, True).eval()
    assert len(deeper.decoder.blocks) == layers + 2
    assert all(not block.scale.any() for block in list(deeper.decoder.blocks)[layers:])
    assert deeper.fingerprint()["codes_hash"] == shipped.fingerprint()["codes_hash"]
    with torch.no_grad():
        codes = shipped.encode(clip)
        assert torch.equal(deeper.encode(clip), codes)
        assert torch.equal(deeper.decode(codes), shipped.decode(codes))
    # another width still starts a fresh decoder
    wider = _from_init(
        DEFAULT_CODEC_CHECKPOINT, "medium", {"decoder_dim": 64, "decoder_layers": layers}, True
    )
    assert not torch.equal(wider.decoder.embed.weight[:, :2], shipped.decoder.embed.weight[:64, :2])

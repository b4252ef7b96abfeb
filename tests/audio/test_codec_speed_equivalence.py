"""The folded inference path of the codec (notewave.audio.codec.inference) computes what the layers do.

On 2 s of real Wesnoth music (``apt-get install wesnoth-1.16-music``): the shipped codec and an
8-codebook ``medium`` codec give identical codes and audio within 1e-4 through both paths; the
folded copy follows weight changes; state_dict keys, the checkpoint format and the fingerprint are
those of the layers (the shipped audio LM records the shipped codec's fingerprint).
"""

from __future__ import annotations

import json

import pytest
import torch

from notewave.audio.codec.data import WESNOTH_MUSIC
from notewave.audio.codec.inference import FoldedStack, folded, retain_freed_memory
from notewave.audio.codec.model import DEFAULT_CODEC_CHECKPOINT, Codec
from notewave.audio.codec.train import config_for
from notewave.core.audio_io import load_audio
from notewave.core.checkpoint import read_checkpoint
from notewave.paths import DEFAULT_AUDIO_CHECKPOINT

pytestmark = pytest.mark.skipif(
    not (WESNOTH_MUSIC / "battle-epic.ogg").is_file(),
    reason="needs the real recordings of `apt-get install wesnoth-1.16-music`",
)


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    """2 s of real orchestral music, mono at 32 kHz: float32 [1, 1, 64000]."""
    wav, _ = load_audio(WESNOTH_MUSIC / "battle-epic.ogg", 32000, offset=20.0, duration=2.0)
    return torch.from_numpy(wav)[None]


def _both_paths(codec: Codec, wav: torch.Tensor, codes: torch.Tensor | None = None):
    """(codes, audio) through the layers, then through the folded copy."""
    out = []
    for fast in (False, True):
        codec.fast_inference = fast
        got = codec.encode(wav)
        out.append((got, codec.decode(got if codes is None else codes)))
    codec.fast_inference = True
    return out


def test_shipped_codec_same_codes_and_audio(clip: torch.Tensor) -> None:
    codec = Codec.from_pretrained()
    (codes_a, audio_a), (codes_b, audio_b) = _both_paths(codec, clip)
    assert codes_a.shape == (1, codec.num_codebooks, 100) and torch.equal(codes_a, codes_b)
    assert audio_a.shape == audio_b.shape == (1, 1, 64000)
    assert audio_a.abs().max() > 0.05  # real music, not silence
    assert torch.allclose(audio_a, audio_b, atol=1e-4)
    for k in (1, 2):  # fewer codebooks decode the same way
        codec.fast_inference = False
        slow = codec.decode(codes_a[:, :k])
        codec.fast_inference = True
        assert torch.allclose(slow, codec.decode(codes_a[:, :k]), atol=1e-4)


def test_rvq_encode_matches_the_plain_nearest_code_search(clip: torch.Tensor) -> None:
    codec = Codec.from_pretrained()
    with torch.no_grad():
        residual = codec.encoder(codec._pad(clip))[0].T  # [T, D] real latents
    expected = []
    for layer in codec.quantizer.layers:  # argmin ||r - c||^2, written out
        book = layer.codebook
        expected.append(((residual[:, None] - book[None]) ** 2).sum(-1).argmin(1))
        residual = residual - book[expected[-1]]
    assert torch.equal(codec.encode(clip, n_q=codec.config.num_codebooks)[0], torch.stack(expected))


def test_eight_codebook_medium_same_codes_and_latents(clip: torch.Tensor) -> None:
    torch.manual_seed(0)
    codec = Codec(config_for("medium", num_codebooks=8)).eval()
    with torch.no_grad():  # random weights and codebooks, each at about the scale of its residual
        scale = codec.encoder(clip).std()
        for k, layer in enumerate(codec.quantizer.layers):
            layer.codebook.normal_(std=float(scale) * 0.6**k)
    (codes_a, _), (codes_b, _) = _both_paths(codec, clip)
    assert codes_a.shape == (1, 8, 100) and torch.equal(codes_a, codes_b)
    assert all(len(set(book.tolist())) > 10 for book in codes_a[0])  # not one code everywhere
    with torch.no_grad():  # the decoder before the clamp to [-1, 1] (random weights saturate it)
        latents = codec.quantizer.decode(codes_a)
        slow, fast = codec.decoder(latents), folded(codec.decoder)(latents)
    assert slow.shape == fast.shape == (1, 1, 64000) and slow.abs().max() > 1e-3
    assert torch.allclose(slow, fast, atol=1e-4 * max(1.0, float(slow.abs().max())))


def test_folded_copy_follows_weight_changes(clip: torch.Tensor) -> None:
    torch.manual_seed(0)
    codec = Codec(config_for("tiny")).eval()
    first = folded(codec.encoder)
    assert folded(codec.encoder) is first  # cached while the weights stay
    latents = first(clip)
    with torch.no_grad():
        next(codec.encoder.parameters()).mul_(1.5)  # in place: what an optimizer step does
    again = folded(codec.encoder)
    assert again is not first
    with torch.no_grad():
        expected = codec.encoder(clip)
    assert torch.allclose(again(clip), expected, atol=1e-5) and not torch.allclose(latents, expected)
    codec.load_state_dict(Codec(config_for("tiny")).state_dict())
    assert folded(codec.encoder) is not again


def test_state_dict_checkpoint_and_fingerprint_unchanged(clip: torch.Tensor) -> None:
    codec = Codec.from_pretrained()
    before = codec.fingerprint()
    tensors, _ = read_checkpoint(DEFAULT_CODEC_CHECKPOINT)
    codec.decode(codec.encode(clip))
    assert set(codec.state_dict()) == set(tensors)  # no cached weight is part of the state
    assert any(".parametrizations.weight.original0" in key for key in tensors)
    assert codec.fingerprint() == before
    recorded = json.loads((DEFAULT_AUDIO_CHECKPOINT / "config.json").read_text())["codec"]
    hashes = [k for k in before if k in recorded]  # the shipped LM reads the shipped codec, as hashed
    assert "weights_hash" in hashes and {k: before[k] for k in hashes} == {k: recorded[k] for k in hashes}


def test_gradients_and_unknown_layers_use_the_modules(clip: torch.Tensor) -> None:
    torch.manual_seed(0)
    codec = Codec(config_for("tiny"))
    assert codec._layers(codec.encoder) is codec.encoder  # gradients on: training sees the modules
    with torch.no_grad():
        assert isinstance(codec._layers(codec.encoder), FoldedStack)
    with pytest.raises(TypeError, match="LSTM"):
        FoldedStack(torch.nn.Sequential(torch.nn.LSTM(2, 2)))


def test_heap_setting_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    retain_freed_memory.cache_clear()
    monkeypatch.setenv("NOTEWAVE_MALLOC_TUNING", "0")
    assert retain_freed_memory() is False
    retain_freed_memory.cache_clear()
    monkeypatch.delenv("NOTEWAVE_MALLOC_TUNING")
    assert isinstance(retain_freed_memory(), bool)

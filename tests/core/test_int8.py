"""Weight-only int8 decoding (notewave.core.int8): the quantization itself, the widths the kernel
refuses, and the shipped composer read token by token through int8 steps against its fp32 steps
on a real held-out chorale (the likelihood of Bach's own next tokens barely moves)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from notewave.core.decode_step import BlockStep, linear_fn
from notewave.core.int8 import Int8Linear, int8_available, int8_fits, quantize_rows
from notewave.core.midi import load_score
from notewave.errors import ConfigError
from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT
from notewave.symbolic.cursor import cursor_features
from notewave.symbolic.decode import Decoder, MidiStep, Sampling
from notewave.symbolic.grammar import Grammar
from notewave.symbolic.layout import piece_ids
from notewave.symbolic.model import MidiLM
from notewave.symbolic.piece import piece_from_score
from notewave.symbolic.vocab import Vocab

needs_kernel = pytest.mark.skipif(not int8_available(), reason="torch build without _weight_int8pack_mm")


def test_quantize_rows_rounds_each_row_to_its_own_scale():
    torch.manual_seed(0)
    w = torch.randn(24, 64) * torch.logspace(-3, 1, 24)[:, None]  # rows four decades apart
    w[5] = 0.0
    q, scales = quantize_rows(w)
    assert q.dtype == torch.int8 and q.shape == w.shape and q.is_contiguous()
    assert scales[5] == 1.0 and not q[5].any()
    assert (q.abs().amax(dim=1)[torch.arange(24) != 5] == 127).all()  # each row uses its full range
    error = (q.float() * scales[:, None] - w).abs()
    assert (error <= scales[:, None] / 2 + 1e-7).all()  # at most half a step, small rows included
    with pytest.raises(ConfigError, match="2-D"):
        quantize_rows(torch.randn(8))


@needs_kernel
def test_int8_linear_matches_the_float_layer_and_refuses_odd_widths():
    torch.manual_seed(1)
    layer = torch.nn.Linear(96, 40)
    x = torch.randn(2, 3, 96)
    ref = layer(x).detach()
    out = Int8Linear(layer.weight, layer.bias)(x)
    assert out.shape == (2, 3, 40) and out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.02 * ref.abs().max()
    odd = torch.nn.Linear(100, 8)  # the CPU kernel crashes on widths that are not multiples of 16
    assert not int8_fits(odd.in_features)
    with pytest.raises(ConfigError, match="multiple of 16"):
        Int8Linear(odd.weight, odd.bias)
    assert isinstance(linear_fn(odd, int8=True), type(linear_fn(odd, int8=False)))  # falls back


@needs_kernel
def test_shipped_composer_int8_steps_keep_the_likelihood_of_a_real_chorale(jsb_test_files):
    model = MidiLM.from_pretrained(DEFAULT_SYMBOLIC_CHECKPOINT).eval().float()
    vocab = Vocab.load(DEFAULT_SYMBOLIC_CHECKPOINT)
    piece = piece_from_score(load_score(jsb_test_files[3]))
    ids = piece_ids(vocab, piece, 0, 8, style="bach")
    x = torch.tensor([ids])
    cursor = torch.from_numpy(cursor_features(vocab, ids))[None]
    steps = {name: MidiStep(model, int8=name == "int8") for name in ("fp32", "int8")}
    assert isinstance(steps["int8"].blocks.blocks[0][2], Int8Linear)
    nll = {}
    with torch.no_grad():
        for name, step in steps.items():
            cache = model.new_cache(1)
            logits = [model(x[:, :16], cache, cursor[:, :16])[:, -1]]
            for t in range(16, len(ids) - 1):
                logits.append(step(x[:, t : t + 1], cursor[:, t : t + 1], cache)[:, -1])
            logp = F.log_softmax(torch.cat(logits), dim=-1)
            nll[name] = -logp.gather(1, x[0, 16:, None])[:, 0]
    notes = sum(vocab.kind(t) == "Pitch" for t in ids[16:])
    per_note = {name: float(v.sum()) / notes for name, v in nll.items()}
    assert len(ids) > 300 and per_note["fp32"] < 6.0  # a trained model on Bach's own tokens
    # measured: 3.7483 vs 3.7487 nats/note on 103 notes, 0.006 nats mean per-token change
    assert abs(per_note["int8"] - per_note["fp32"]) < 0.01
    assert float((nll["int8"] - nll["fp32"]).abs().mean()) < 0.02
    # the Decoder takes the int8 step by default and the fp32 one on request
    assert isinstance(BlockStep(model.transformer, int8=True).blocks[0][2], Int8Linear)
    for int8 in (None, False):
        decoder = Decoder(model, Grammar(vocab, piece.programs), Sampling(), int8=int8)
        decoder.start(ids[:16])
        decoder.feed(ids[16])
        assert isinstance(decoder.step.head, Int8Linear) is (int8 is None)

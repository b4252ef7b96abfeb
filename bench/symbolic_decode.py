"""Decoding and training speed of the MIDI LM, against Hugging Face GPT-2 of the same size.

Run: ``.venv/bin/python bench/symbolic_decode.py [--config small] [--new 256] [--prompt 64]``
(needs the bench extra: ``pip install -e .[bench]`` for transformers).

Prints tokens/s for batch 1 and batch 8 decoding with and without the KV cache, for
notewave's MidiLM and ``transformers.GPT2LMHeadModel.generate`` with the same width,
depth, heads, context and vocabulary (random weights, multinomial sampling, fp32), and
training tokens/s with fp32, forced bf16 autocast and ``--precision auto`` (what ``notewave
train`` uses by default: bf16 only where the CPU computes it natively). Ratios are against GPT-2
in the same run, and against fp32 for training; the CPU capability and the auto choice are printed.
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_of

from notewave.core.precision import describe_precision, resolve_precision
from notewave.core.sampling import sample
from notewave.core.train import TrainConfig, make_optimizer
from notewave.symbolic.model import MidiLM, config_for
from notewave.symbolic.tokenizer import MidiTokenizer
from notewave.symbolic.train import token_loss


@torch.no_grad()
def decode_ours(model: MidiLM, prompt: torch.Tensor, new: int, use_cache: bool) -> torch.Tensor:
    """Sample ``new`` tokens after ``prompt`` ``[B, T]``; with or without the KV cache."""
    ids = prompt
    if use_cache:
        cache = model.new_cache(prompt.shape[0])
        logits = model(ids, cache)[:, -1]
        for _ in range(new):
            nxt = sample(logits)[:, None]
            ids = torch.cat([ids, nxt], dim=1)
            logits = model(nxt, cache)[:, -1]
    else:
        for _ in range(new):
            nxt = sample(model(ids)[:, -1])[:, None]
            ids = torch.cat([ids, nxt], dim=1)
    return ids


@torch.no_grad()
def decode_hf(model, prompt: torch.Tensor, new: int, use_cache: bool) -> torch.Tensor:
    return model.generate(
        prompt,
        max_new_tokens=new,
        min_new_tokens=new,
        do_sample=True,
        top_k=0,
        use_cache=use_cache,
        pad_token_id=0,
        attention_mask=torch.ones_like(prompt),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--prompt", type=int, default=64, help="prompt tokens")
    parser.add_argument("--new", type=int, default=256, help="generated tokens")
    parser.add_argument("--train-batch", type=int, default=8)
    args = parser.parse_args()
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = MidiTokenizer(["bach"])
    ours = MidiLM(config_for(args.config, tok, dropout=0.0)).eval()
    t = ours.config.transformer
    hf_config = GPT2Config(
        vocab_size=tok.vocab_size,
        n_positions=t.max_seq_len,
        n_embd=t.d_model,
        n_layer=t.n_layers,
        n_head=t.n_heads,
        n_inner=t.d_ff,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=False,
    )
    hf = GPT2LMHeadModel(hf_config).eval()
    print(
        f"config {args.config}: d_model {t.d_model}, layers {t.n_layers}, heads {t.n_heads}, context "
        f"{t.max_seq_len}, vocab {tok.vocab_size}; params ours {ours.num_parameters() / 1e6:.2f} M, "
        f"GPT-2 {sum(p.numel() for p in hf.parameters()) / 1e6:.2f} M; "
        f"torch threads {torch.get_num_threads()}"
    )
    rows = []
    for batch in (1, 8):
        prompt = torch.randint(0, tok.base_size, (batch, args.prompt))
        for cache in (True, False):
            new = args.new if cache else args.new // 4
            ours_s = best_of(lambda: decode_ours(ours, prompt, new, cache))  # noqa: B023
            hf_s = best_of(lambda: decode_hf(hf, prompt, new, cache))  # noqa: B023
            ours_tps, hf_tps = batch * new / ours_s, batch * new / hf_s
            rows.append((batch, "yes" if cache else "no", new, ours_tps, hf_tps, ours_tps / hf_tps))
    print("\n| batch | KV cache | new tokens | MidiLM tok/s | GPT-2 generate tok/s | ratio |")
    print("|---|---|---|---|---|---|")
    for b, c, n, o, h, r in rows:
        print(f"| {b} | {c} | {n} | {o:,.0f} | {h:,.0f} | {r:.2f}x |")
    cached = {b: o for b, c, _, o, _, _ in rows if c == "yes"}
    uncached = {b: o for b, c, _, o, _, _ in rows if c == "no"}
    for b in (1, 8):
        print(f"KV-cache speed-up, batch {b}: {cached[b] / uncached[b]:.1f}x")

    print(f"\nprecision: {describe_precision('cpu')}")
    auto = resolve_precision("auto", "cpu")
    print("\n| training | tokens/s | ratio to fp32 |")
    print("|---|---|---|")
    train_model = MidiLM(config_for(args.config, tok)).train()
    opt = make_optimizer(train_model, TrainConfig())
    x = torch.randint(0, tok.base_size, (args.train_batch, t.max_seq_len + 1))
    speeds = {}
    for name, bf16 in (
        ("fp32", False),
        ("bf16 autocast (forced)", True),
        (f"auto -> {auto}", auto == "bf16"),
    ):

        def step() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # noqa: B023
                loss = token_loss(train_model(x[:, :-1]), x[:, 1:])
            opt.zero_grad()
            loss.backward()
            opt.step()

        seconds = best_of(step, repeats=3)
        speeds[name] = args.train_batch * t.max_seq_len / seconds
        print(f"| {name} | {speeds[name]:,.0f} | {speeds[name] / speeds['fp32']:.2f}x |")


if __name__ == "__main__":
    main()

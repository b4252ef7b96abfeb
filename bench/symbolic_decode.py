"""Decoding speed of the composer's MidiLM against Hugging Face GPT-2 of the same size.

Run: ``.venv/bin/python bench/symbolic_decode.py [--checkpoint DIR] [--config medium] [--new 256]
[--prompt 64] [--threads N] [--profile]`` (needs the bench extra, ``pip install -e .[bench]``,
for transformers).

1. Raw decoding, tokens/s at batch 1 and batch 8 with the KV cache: notewave's MidiLM (its
   cache, :func:`notewave.core.sampling.sample`) with its fp32 weights and with the weight-only
   int8 copies its Decoder steps use by default (:mod:`notewave.core.int8`), against
   ``transformers.GPT2LMHeadModel.generate`` with the same width, depth, heads, feed-forward
   width, context and vocabulary (random weights, multinomial sampling, fp32), timed in turn
   (best of ``--repeats`` rounds). Size: ``--config`` (default ``medium``, the shipped size) or
   the ``config.json`` of ``--checkpoint``. Targets (for the weights the composer decodes with):
   >= 2.0x GPT-2 at batch 1 and >= 1.5x at batch 8.
2. Wall time of an 8-bar continuation of a real 4-track piece (the first JSB test chorale,
   its first 8 bars as prompt) through :func:`notewave.symbolic.compose.continue_midi`
   (grammar masks, top-p 0.95): with the trained composer (``--checkpoint``, else the shipped
   one, else ``runs/composer/best``, when present) and with an untrained model of the same size.
3. ``--profile``: where the time of one constrained decode step goes (Decoder.choose: grammar
   mask and sampling; Decoder.feed: the model step with the KV cache), and the heaviest
   operators of 64 steps under ``torch.profiler``.
4. ``--train``: training tokens/s in fp32, forced bf16 autocast and ``--precision auto``.

The CPU capability and the precision ``auto`` picks are printed first.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _timing import best_of
from symusic import Score

from notewave.core.int8 import int8_available
from notewave.core.midi import load_score
from notewave.core.precision import describe_precision, resolve_precision
from notewave.core.sampling import sample
from notewave.core.train import TrainConfig, make_optimizer
from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT, JSB_MIDI_DIR, PROJECT_ROOT
from notewave.symbolic.compose import continue_midi, first_bars, sampling_for
from notewave.symbolic.cursor import COLUMNS, NONE_ROW
from notewave.symbolic.data import bar_sizes
from notewave.symbolic.decode import Decoder, MidiStep
from notewave.symbolic.grammar import Grammar
from notewave.symbolic.layout import piece_ids
from notewave.symbolic.model import MidiLM, MidiLMConfig, config_for
from notewave.symbolic.piece import piece_from_score
from notewave.symbolic.train import token_loss
from notewave.symbolic.vocab import Vocab

TARGETS = {1: 2.0, 8: 1.5}
RUN_CHECKPOINT = PROJECT_ROOT / "runs" / "composer" / "best"
CHORALE = JSB_MIDI_DIR / "test" / "jsb_test_000.mid"


@torch.no_grad()
def decode_ours(model: MidiLM, step: MidiStep, prompt: torch.Tensor, new: int) -> torch.Tensor:
    """Sample ``new`` tokens after ``prompt`` ``[B, T]``: the prompt through ``forward`` into the KV
    cache, then one ``step`` (a :class:`~notewave.symbolic.decode.MidiStep` of ``model``) per
    token, as the composer's :class:`~notewave.symbolic.decode.Decoder` does (a model with the
    cursor table adds its embedding lookup, of the ``none`` rows: random ids have no bars)."""
    cache = model.new_cache(prompt.shape[0])
    rows = torch.tensor(NONE_ROW) if model.config.cursor else None
    logits = model(prompt, cache, None if rows is None else rows.expand(*prompt.shape, COLUMNS))[:, -1]
    out = []
    for _ in range(new):
        nxt = sample(logits)[:, None]
        out.append(nxt)
        logits = step(nxt, None if rows is None else rows.expand(*nxt.shape, COLUMNS), cache)[:, -1]
    return torch.cat([prompt, *out], dim=1)


@torch.no_grad()
def decode_hf(model, prompt: torch.Tensor, new: int) -> torch.Tensor:
    return model.generate(
        prompt,
        max_new_tokens=new,
        min_new_tokens=new,
        do_sample=True,
        top_k=0,
        use_cache=True,
        pad_token_id=0,
        attention_mask=torch.ones_like(prompt),
    )


def model_config(args: argparse.Namespace, vocab: Vocab) -> MidiLMConfig:
    """The size to measure: the checkpoint's ``config.json``, else ``--config`` for ``vocab``."""
    if args.checkpoint is not None:
        raw = json.loads((args.checkpoint / "config.json").read_text(encoding="utf-8"))
        config = MidiLMConfig.from_dict(raw)
        config.transformer.dropout = 0.0
        return config
    return config_for(args.config, vocab, dropout=0.0)


def gpt2_like(config: MidiLMConfig):
    from transformers import GPT2Config, GPT2LMHeadModel

    t = config.transformer
    hf_config = GPT2Config(
        vocab_size=config.vocab_size,
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
    return GPT2LMHeadModel(hf_config).eval()


def interleaved(fns: list, repeats: int) -> list[float]:
    """Best wall time (s) of each of ``fns`` over ``repeats`` rounds that call them in turn, after
    one warm-up call each (so that a change of machine load hits all of them alike)."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - started)
    return best


def raw_decoding(ours: MidiLM, hf, vocab_size: int, prompt_len: int, new: int, repeats: int) -> None:
    """Print the tokens/s table: fp32 and (where torch has the kernel) int8 weights against GPT-2,
    the target on the weights the composer's Decoder uses."""
    steps = {"fp32": MidiStep(ours)}
    if int8_available():
        steps["int8"] = MidiStep(ours, int8=True)
    decodes_with = "int8" if "int8" in steps else "fp32"
    header = "batch | KV cache | new tokens | MidiLM weights | MidiLM tok/s | GPT-2 generate tok/s | ratio"
    print(f"| {header} | target |")
    print("|---|---|---|---|---|---|---|---|")
    for batch in TARGETS:
        prompt = torch.randint(0, vocab_size, (batch, prompt_len))
        runs = [lambda s=s: decode_ours(ours, s, prompt, new) for s in steps.values()]  # noqa: B023
        *ours_s, hf_s = interleaved([*runs, lambda: decode_hf(hf, prompt, new)], repeats)  # noqa: B023
        hf_tps = batch * new / hf_s
        for name, seconds in zip(steps, ours_s, strict=True):
            ours_tps = batch * new / seconds
            ratio = ours_tps / hf_tps
            target = "-"
            if name == decodes_with:
                target = f">= {TARGETS[batch]}x {'pass' if ratio >= TARGETS[batch] else 'FAIL'}"
            row = f"{batch} | yes | {new} | {name} | {ours_tps:,.0f} | {hf_tps:,.0f} | {ratio:.2f}x"
            print(f"| {row} | {target} |")


def continuation_time(model: MidiLM, vocab: Vocab, bars: int) -> tuple[float, int, int]:
    """Seconds, new tokens and new notes of a ``bars``-bar continuation of :data:`CHORALE`."""
    prompt = first_bars(piece_score(), 8)
    started = time.perf_counter()
    out = continue_midi(model, vocab, prompt, bars, style="bach" if "bach" in vocab.styles else None)
    seconds = time.perf_counter() - started
    piece = piece_from_score(out)
    tokens = int(bar_sizes(vocab, piece)[8:].sum())
    notes = int((piece.notes[:, 1] >= 8).sum())
    return seconds, tokens, notes


def piece_score() -> Score:
    """The chorale of the continuation (:data:`CHORALE`)."""
    return load_score(CHORALE)


def trained_checkpoint(args: argparse.Namespace) -> Path | None:
    for path in (args.checkpoint, DEFAULT_SYMBOLIC_CHECKPOINT, RUN_CHECKPOINT):
        if path is not None and (path / "model.safetensors").is_file():
            return path
    return None


def profile_step(model: MidiLM, vocab: Vocab, steps: int = 64) -> None:
    """Time Decoder.choose and Decoder.feed over ``steps`` constrained steps after the chorale,
    then list the heaviest operators of the model steps."""
    piece = piece_from_score(first_bars(piece_score(), 8))
    grammar = Grammar(vocab, piece.programs)
    decoder = Decoder(model, grammar, sampling_for(0, 1.0, None, 0.95))
    context = piece_ids(vocab, piece, eos=False) + [vocab.bar_id]
    decoder.start(context[-(model.context // 2) :])
    state = grammar.bar_state(piece.meters[-1])
    choose = feed = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        token = decoder.choose(state)
        state = grammar.follow(state, token)
        t1 = time.perf_counter()
        decoder.feed(token)
        choose, feed = choose + t1 - t0, feed + time.perf_counter() - t1
    length = decoder.cache.length
    print(f"\nconstrained decode step, mean of {steps} (cache at {length} positions):")
    print(f"choose (grammar mask + top-p sampling) {1000 * choose / steps:.2f} ms")
    print(f"feed (model step with the KV cache)    {1000 * feed / steps:.2f} ms")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            token = decoder.choose(state)
            state = grammar.follow(state, token)
            decoder.feed(token)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def training_speed(config: MidiLMConfig, batch: int) -> None:
    auto = resolve_precision("auto", "cpu")
    print("\n| training | tokens/s | ratio to fp32 |\n|---|---|---|")
    model = MidiLM(config).train()
    opt = make_optimizer(model, TrainConfig())
    x = torch.randint(0, config.vocab_size, (batch, config.transformer.max_seq_len + 1))
    rows = (
        torch.tensor(NONE_ROW).expand(batch, config.transformer.max_seq_len, COLUMNS)
        if config.cursor
        else None
    )
    speeds: dict[str, float] = {}
    for name, bf16 in (
        ("fp32", False),
        ("bf16 autocast (forced)", True),
        (f"auto -> {auto}", auto == "bf16"),
    ):

        def step() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # noqa: B023
                loss = token_loss(model(x[:, :-1], cursor=rows), x[:, 1:])
            opt.zero_grad()
            loss.backward()
            opt.step()

        speeds[name] = batch * config.transformer.max_seq_len / best_of(step, repeats=2)
        print(f"| {name} | {speeds[name]:,.0f} | {speeds[name] / speeds['fp32']:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="composer folder (its size and weights)"
    )
    parser.add_argument("--config", default="medium", help="model size without --checkpoint (default medium)")
    parser.add_argument("--prompt", type=int, default=64, help="prompt tokens (default 64)")
    parser.add_argument("--new", type=int, default=256, help="generated tokens (default 256)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per measurement (default 3)")
    parser.add_argument(
        "--bars", type=int, default=8, help="bars of the constrained continuation (default 8)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--profile", action="store_true", help="profile one constrained decode step")
    parser.add_argument("--train", action="store_true", help="also measure training tokens/s")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(f"precision: {describe_precision('cpu')}; torch threads {torch.get_num_threads()}")
    torch.manual_seed(0)
    vocab = Vocab.load(args.checkpoint) if args.checkpoint else Vocab(["bach"])
    config = model_config(args, vocab)
    ours, hf = MidiLM(config).eval(), gpt2_like(config)
    t = config.transformer
    print(
        f"size: d_model {t.d_model}, layers {t.n_layers}, heads {t.n_heads}, d_ff {t.d_ff}, context "
        f"{t.max_seq_len}, vocab {config.vocab_size}; params ours {ours.num_parameters() / 1e6:.2f} M, "
        f"GPT-2 {sum(p.numel() for p in hf.parameters()) / 1e6:.2f} M\n"
    )
    raw_decoding(ours, hf, config.vocab_size, args.prompt, args.new, args.repeats)

    print(f"\n| {args.bars}-bar continuation of {CHORALE.name} (4 tracks) | s | new tokens | tok/s | notes |")
    print("|---|---|---|---|---|")
    trained = trained_checkpoint(args)
    models = [(f"untrained {t.d_model}x{t.n_layers}", ours, vocab)]
    if trained is not None:
        models.insert(0, (f"trained ({trained})", MidiLM.from_pretrained(trained), Vocab.load(trained)))
    for name, model, model_vocab in models:
        seconds, tokens, notes = continuation_time(model, model_vocab, args.bars)
        print(f"| {name} | {seconds:.1f} | {tokens} | {tokens / seconds:,.0f} | {notes} |")
    if args.profile:
        profile_step(*models[0][1:])
    if args.train:
        training_speed(config, 8)
    print(f"\nwall time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

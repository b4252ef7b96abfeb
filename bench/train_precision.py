"""Training speed of fp32 against bf16 autocast, and what ``precision="auto"`` picks.

Run: ``.venv/bin/python bench/train_precision.py [--d-model 256] [--layers 4] [--seq-len 128]
[--batch-size 8] [--seconds 1] [--rounds 3] [--threads N]``

Prints the device's capability and the resolved choice for ``auto``, then training steps/s
(optimizer updates of :class:`notewave.core.train.Trainer` on a small language model built
on :class:`notewave.core.transformer.Transformer`, random tokens) for fp32, forced bf16
autocast (bypassing the fallback) and auto, with ratios against fp32 measured in the same
process. Modes alternate over ``--rounds`` rounds of at least ``--seconds`` (and one update)
each; each mode keeps its best round. Emulated bf16 (a CPU without AMX / AVX512_BF16 kernels)
can be 20-50x slower than fp32, so a round of forced bf16 may take several seconds there.
To see that case on a CPU with AMX, run with ``ONEDNN_MAX_CPU_ISA=AVX2``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from notewave.core.distributed import Distributed
from notewave.core.precision import describe_precision, resolve_precision
from notewave.core.train import TrainConfig, Trainer
from notewave.core.transformer import Transformer, TransformerConfig


class TinyLM(nn.Module):
    """Token embedding, :class:`Transformer`, output head."""

    def __init__(self, vocab: int, config: TransformerConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab, config.d_model)
        self.body = Transformer(config)
        self.head = nn.Linear(config.d_model, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.embed(ids)))


def make_trainer(args: argparse.Namespace, device: torch.device, run_dir: str) -> Trainer:
    """A Trainer (fp32 resolved) over random token batches; the caller sets ``precision``."""
    torch.manual_seed(0)
    config = TransformerConfig(
        d_model=args.d_model,
        n_layers=args.layers,
        n_heads=max(1, args.d_model // 64),
        max_seq_len=args.seq_len,
        dropout=0.0,
    )
    model = TinyLM(args.vocab, config)
    cfg = TrainConfig(steps=10**9, batch_size=args.batch_size, warmup=10, precision="fp32")

    def batch_fn(generator: torch.Generator) -> torch.Tensor:
        ids = torch.randint(0, args.vocab, (args.batch_size, args.seq_len + 1), generator=generator)
        return ids.to(device)

    def loss_fn(forward, ids: torch.Tensor) -> torch.Tensor:
        logits = forward(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))

    return Trainer(model, cfg, run_dir, batch_fn, loss_fn, lambda m: {}, dist_info=Distributed(device=device))


def steps_per_s(trainer: Trainer, seconds: float) -> float:
    """Optimizer updates per second, over at least one update and ``seconds`` seconds."""
    start, steps = time.perf_counter(), 0
    while steps == 0 or time.perf_counter() - start < seconds:
        trainer.train_step()
        if trainer.dist.device.type == "cuda":
            torch.cuda.synchronize()
        steps += 1
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    auto = resolve_precision("auto", device)
    print(describe_precision(device))
    print(f"auto resolves to: {auto}")
    print(
        f"model: d_model {args.d_model}, {args.layers} layers, seq {args.seq_len}, batch {args.batch_size}, "
        f"vocab {args.vocab}; {torch.get_num_threads()} CPU threads"
    )
    modes = {"fp32": "fp32", "bf16 (forced)": "bf16", f"auto ({auto})": auto}
    trainers = {}
    for name, chosen in modes.items():
        trainers[name] = make_trainer(args, device, "/nonexistent-bench-run")  # never saves
        trainers[name].precision = chosen  # forced: no fallback
        steps_per_s(trainers[name], 0.0)  # warm-up: one update
    best = dict.fromkeys(modes, 0.0)
    for _ in range(args.rounds):
        for name in modes:
            best[name] = max(best[name], steps_per_s(trainers[name], args.seconds))
    print(f"{'mode':<16} {'steps/s':>8} {'vs fp32':>8}")
    for name in modes:
        print(f"{name:<16} {best[name]:>8.2f} {best[name] / best['fp32']:>7.2f}x")


if __name__ == "__main__":
    main()

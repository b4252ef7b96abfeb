"""A small, complete training loop shared by every notewave model.

AdamW (Loshchilov & Hutter 2019) with linear warmup and cosine decay, gradient clipping,
optional bf16 autocast (CPU or GPU), periodic validation, atomic checkpoints of the model
*and* the optimizer (safetensors + JSON, no pickle) for ``--resume``, a tqdm progress
bar, and data-parallel training with ``torch.distributed`` when started by
``torchrun --nproc_per_node N`` (gloo on CPU, NCCL on GPU).

Checkpoints in a run folder: ``last/`` (every ``save_every`` steps and at the end) and
``best/`` (lowest validation loss). Both hold the model files written by ``save_fn`` plus
``trainer.safetensors`` / ``trainer.json`` (optimizer moments, step, RNG state).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from notewave.core.distributed import Distributed, setup_distributed
from notewave.errors import CheckpointError, ConfigError

TRAINER_WEIGHTS = "trainer.safetensors"
TRAINER_STATE = "trainer.json"


@dataclass
class TrainConfig:
    """Optimisation settings. ``steps`` counts optimizer updates; ``batch_size`` is per process."""

    steps: int = 2000
    batch_size: int = 16
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 250
    save_every: int = 250
    bf16: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.warmup < 0:
            raise ConfigError(f"invalid training settings: {self}")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step``: linear warmup to ``lr``, then cosine decay to ``lr * min_lr_ratio``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, norms or embeddings' 1-D params)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON-able metadata."""
    state = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_with_training_info(
    model: nn.Module, folder: Path, extra_files: Callable[[Path], None], info: dict[str, Any]
) -> None:
    """Default checkpoint writer: ``model.save_pretrained(folder, extra_config={"training": info},
    extra_files=extra_files)`` (every notewave model has this signature)."""
    model.save_pretrained(folder, extra_config={"training": info}, extra_files=extra_files)  # type: ignore[operator]


class Trainer:
    """Runs the optimisation of ``model``.

    Args:
        model: the module to train (unwrapped; it is wrapped in DDP when distributed).
        cfg: optimisation settings.
        run_dir: folder for ``last/``, ``best/`` and ``log.jsonl``.
        batch_fn: ``(generator) -> batch`` draws one training batch for this process.
        loss_fn: ``(forward, batch) -> scalar loss``; ``forward`` is the (DDP-wrapped) model.
        eval_fn: ``(model) -> {"val_loss": float, ...}`` on the validation data.
        save_fn: ``(model, folder, extra_files_callback, info) -> None`` writes the model's
            checkpoint and calls the callback with the temporary folder so the trainer state
            lands in the same atomic write. Default: :func:`save_with_training_info`.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        run_dir: str | os.PathLike[str],
        batch_fn: Callable[[torch.Generator], Any],
        loss_fn: Callable[[Callable[..., Any], Any], torch.Tensor],
        eval_fn: Callable[[nn.Module], dict[str, float]],
        save_fn: Callable[[nn.Module, Path, Callable[[Path], None], dict[str, Any]], None] | None = None,
        dist_info: Distributed | None = None,
    ):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.dist = dist_info or setup_distributed()
        self.model = model.to(self.dist.device)
        self.forward: Callable[..., Any] = self.model
        if self.dist.world > 1:
            self.forward = nn.parallel.DistributedDataParallel(self.model)
        self.opt = make_optimizer(self.model, cfg)
        self.batch_fn, self.loss_fn, self.eval_fn = batch_fn, loss_fn, eval_fn
        self.save_fn = save_fn or save_with_training_info
        self.step = 0
        self.best = float("inf")
        self.generator = torch.Generator().manual_seed(cfg.seed + 1000 * self.dist.rank)
        self.history: list[dict[str, Any]] = []

    # ---- checkpoints ------------------------------------------------------------------
    def _trainer_files(self, folder: Path) -> None:
        tensors, meta = optimizer_tensors(self.opt)
        tensors["rng.generator"] = self.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(folder / TRAINER_WEIGHTS))
        info = {"step": self.step, "best": self.best, "optimizer": meta, "train_config": asdict(self.cfg)}
        (folder / TRAINER_STATE).write_text(json.dumps(info), encoding="utf-8")

    def save(self, name: str) -> Path:
        folder = self.run_dir / name
        info = {"step": self.step, "train_config": asdict(self.cfg), "best_val_loss": self.best}
        self.save_fn(self.model, folder, self._trainer_files, info)
        return folder

    def resume(self) -> None:
        """Continue from ``run_dir/last`` (model weights loaded by the caller, optimizer here).

        Raises:
            CheckpointError: when the trainer state is missing or corrupt.
        """
        folder = self.run_dir / "last"
        try:
            tensors = load_file(str(folder / TRAINER_WEIGHTS))
            info = json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
            restore_optimizer(
                self.opt, {k: v for k, v in tensors.items() if k.startswith("state.")}, info["optimizer"]
            )
        except Exception as exc:
            raise CheckpointError(f"cannot resume from {folder}: {exc}") from exc
        self.generator.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.torch"])
        self.step, self.best = int(info["step"]), float(info["best"])

    # ---- loop -------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")

    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        with torch.no_grad(), self.autocast():
            result = self.eval_fn(self.model)
        self.model.train()
        return result

    def autocast(self) -> Any:
        return torch.autocast(self.dist.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16)

    def train_step(self) -> tuple[float, float]:
        """One optimizer update; returns ``(loss, grad_norm)``."""
        lr = lr_at(self.step, self.cfg)
        for group in self.opt.param_groups:
            group["lr"] = lr
        batch = self.batch_fn(self.generator)
        with self.autocast():
            loss = self.loss_fn(self.forward, batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.step += 1
        return float(loss.detach()), float(norm)

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """:meth:`resume` (when asked) and :meth:`run`; returns ``steps``, ``wall_s`` (seconds of
        training), ``best_val_loss`` (``None`` without validation) and ``history``."""
        if resume:
            self.resume()
        start = time.perf_counter()
        history = self.run()
        return {
            "steps": self.step,
            "wall_s": round(time.perf_counter() - start, 1),
            "best_val_loss": self.best if math.isfinite(self.best) else None,
            "history": history,
        }

    def run(self) -> list[dict[str, Any]]:
        """Train until ``cfg.steps``; returns the log records (one per validation)."""
        self.model.train()
        start = time.perf_counter()
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not self.dist.main, desc="train")
        running = 0.0
        count = 0
        while self.step < self.cfg.steps:
            loss, _ = self.train_step()
            running, count = running + loss, count + 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            last = self.step == self.cfg.steps
            if self.step % self.cfg.eval_every == 0 or last:
                record = {"step": self.step, "train_loss": running / count, **self.evaluate()}
                record["wall_s"] = round(time.perf_counter() - start, 1)
                running, count = 0.0, 0
                self._log(record)
                bar.write(json.dumps(record))
                if record.get("val_loss", float("inf")) < self.best:
                    self.best = record["val_loss"]
                    if self.dist.main:
                        self.save("best")
            if self.dist.main and (self.step % self.cfg.save_every == 0 or last):
                self.save("last")
        bar.close()
        if self.dist.world > 1:
            dist.barrier()
        return self.history

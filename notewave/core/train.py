"""A small, complete training loop shared by every notewave model.

AdamW (Loshchilov & Hutter 2019) with linear warmup and cosine decay, gradient clipping,
bf16 autocast where the hardware runs it natively (``precision``, see
:mod:`notewave.core.precision`), periodic validation, atomic checkpoints of the model
*and* the optimizer (safetensors + JSON, no pickle) for ``--resume``, a tqdm progress
bar, and data-parallel training with ``torch.distributed`` when started by
``torchrun --nproc_per_node N`` (gloo on CPU, NCCL on GPU).

Checkpoints in a run folder: ``last/`` (every ``save_every`` steps and at the end) and
``best/`` (lowest validation loss). Both hold the model files written by ``save_fn`` plus
``trainer.safetensors`` / ``trainer.json`` (optimizer moments, step, RNG state).

A run survives being killed at any moment: checkpoint writes are crash-safe (see
:mod:`notewave.core.checkpoint`), and :meth:`Trainer.resume` recovers interrupted writes,
removes their leftovers and cuts ``log.jsonl`` back to the resumed step.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from notewave.core.checkpoint import recover_checkpoint
from notewave.core.distributed import Distributed, broadcast_from_rank0, setup_distributed
from notewave.core.io import atomic_open
from notewave.core.precision import check_precision, device_capability, resolve_precision
from notewave.errors import CheckpointError, ConfigError

TRAINER_WEIGHTS = "trainer.safetensors"
TRAINER_STATE = "trainer.json"
LOG_FILE = "log.jsonl"


@dataclass
class TrainConfig:
    """Optimisation settings. ``steps`` counts optimizer updates; ``batch_size`` is per process.

    ``precision`` is ``"auto"`` (bf16 autocast only where the device runs bf16 natively),
    ``"fp32"`` or ``"bf16"`` (falls back to fp32 with a warning where not native); the
    :class:`Trainer` resolves it once with :func:`~notewave.core.precision.resolve_precision`.
    """

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
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check_precision(self.precision)
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


def truncate_log(path: str | os.PathLike[str], step: int) -> int:
    """Cut a ``log.jsonl`` back to its records with ``"step" <= step``, atomically.

    Lines that are not JSON objects (a record torn by a kill) are dropped too; records
    without a step are kept. A missing file is left missing.

    Returns:
        The number of records kept.
    """
    log = Path(path)
    if not log.is_file():
        return 0
    text = log.read_text(encoding="utf-8")
    kept = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
            if isinstance(record, dict) and float(record.get("step", 0)) <= step:
                kept.append(line)
        except (ValueError, TypeError):
            continue
    new = "".join(line + "\n" for line in kept)
    if new != text:
        with atomic_open(log) as handle:
            handle.write(new)
    return len(kept)


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
        self.precision = self._resolve_precision()
        self.capability = device_capability(self.dist.device)
        self.batch_fn, self.loss_fn, self.eval_fn = batch_fn, loss_fn, eval_fn
        self.save_fn = save_fn or save_with_training_info
        self.step = 0
        self.best = float("inf")
        self.generator = torch.Generator().manual_seed(cfg.seed + 1000 * self.dist.rank)
        self.history: list[dict[str, Any]] = []

    def _resolve_precision(self) -> str:
        """``cfg.precision`` resolved for this device; rank 0's choice on every process."""
        with warnings.catch_warnings():
            if not self.dist.main:
                warnings.simplefilter("ignore")  # rank 0 warns once
            choice = resolve_precision(self.cfg.precision, self.dist.device)
        if self.dist.world > 1:
            flag = torch.tensor([choice == "bf16"], dtype=torch.int32, device=self.dist.device)
            broadcast_from_rank0(flag)
            choice = "bf16" if bool(flag.item()) else "fp32"
        return choice

    # ---- checkpoints ------------------------------------------------------------------
    def _trainer_files(self, folder: Path) -> None:
        tensors, meta = optimizer_tensors(self.opt)
        tensors["rng.generator"] = self.generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(folder / TRAINER_WEIGHTS))
        info = {"step": self.step, "best": self.best, "optimizer": meta, "train_config": asdict(self.cfg)}
        (folder / TRAINER_STATE).write_text(json.dumps(info), encoding="utf-8")

    def save(self, name: str) -> Path:
        """Write the checkpoint ``run_dir/name`` (model, optimizer, RNG, step, precision) atomically
        with ``save_fn``; returns the folder."""
        folder = self.run_dir / name
        info = {
            "step": self.step,
            "train_config": asdict(self.cfg),
            "best_val_loss": self.best,
            "precision": self.precision,
            "capability": self.capability,
        }
        self.save_fn(self.model, folder, self._trainer_files, info)
        return folder

    def resume(self) -> None:
        """Continue from ``run_dir/last`` (model weights loaded by the caller, optimizer here).

        First recovers interrupted checkpoint writes of ``last/`` and ``best/`` (promoting a
        complete hidden copy when ``last/`` is missing, deleting leftovers), and afterwards
        cuts ``log.jsonl`` back to the resumed step so that no step is logged twice.

        Raises:
            CheckpointError: when the trainer state is missing or corrupt.
        """
        folder = self.run_dir / "last"
        if self.dist.main:
            recover_checkpoint(self.run_dir / "best")
            recover_checkpoint(folder)
        if not folder.is_dir():
            raise CheckpointError(f"cannot resume: {folder} is missing and no complete copy was left")
        try:
            tensors = load_file(str(folder / TRAINER_WEIGHTS))
            info = json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
            restore_optimizer(
                self.opt, {k: v for k, v in tensors.items() if k.startswith("state.")}, info["optimizer"]
            )
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckpointError(f"cannot resume from {folder}: {first}") from exc
        self.generator.set_state(tensors["rng.generator"])
        torch.set_rng_state(tensors["rng.torch"])
        self.step, self.best = int(info["step"]), float(info["best"])
        if self.dist.main:
            truncate_log(self.run_dir / LOG_FILE, self.step)

    # ---- loop -------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / LOG_FILE, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")

    def evaluate(self) -> dict[str, float]:
        """``eval_fn`` on the model in eval mode, without gradients, under :meth:`autocast`."""
        self.model.eval()
        with torch.no_grad(), self.autocast():
            result = self.eval_fn(self.model)
        self.model.train()
        return result

    def autocast(self) -> Any:
        """bf16 autocast when the resolved precision is ``"bf16"``, else a no-op context."""
        return torch.autocast(self.dist.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

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
        training), ``best_val_loss`` (``None`` without validation), ``precision`` (the resolved
        ``"bf16"`` or ``"fp32"``), ``capability`` (of the device) and ``history``."""
        if resume:
            self.resume()
        start = time.perf_counter()
        history = self.run()
        return {
            "steps": self.step,
            "wall_s": round(time.perf_counter() - start, 1),
            "best_val_loss": self.best if math.isfinite(self.best) else None,
            "precision": self.precision,
            "capability": self.capability,
            "history": history,
        }

    def run(self) -> list[dict[str, Any]]:
        """Train until ``cfg.steps``; returns the log records (one per validation)."""
        self.model.train()
        start = time.perf_counter()
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not self.dist.main, desc="train")
        if self.dist.main:
            bar.write(f"precision: {self.cfg.precision} -> {self.precision} ({self.capability})")
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
                record["precision"] = self.precision
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

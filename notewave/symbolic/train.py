"""``notewave train symbolic``: train a :class:`MidiLM` on folders of MIDI files."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from notewave.core.train import TrainConfig, Trainer, setup_distributed
from notewave.errors import CheckpointError, DataError, TokenizerError
from notewave.symbolic.data import IGNORE, TokenDataset, midi_files
from notewave.symbolic.model import MidiLM, config_for
from notewave.symbolic.tokenizer import MidiTokenizer

DEFAULT_SHIFTS = tuple(range(-5, 7))  # transposition augmentation: every key once


def token_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy (nats) of ``logits`` ``[B, T, V]`` against ``targets`` int64 ``[B, T]``;
    ``IGNORE`` targets do not count."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        targets.reshape(-1),
        ignore_index=IGNORE,
        reduction=reduction,
    )


def split_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """Training and validation files of a data folder.

    A folder with ``train/`` and ``valid/`` subfolders uses them; otherwise every 20th
    file (sorted by path) is held out for validation.
    """
    if (folder / "train").is_dir():
        valid = midi_files(folder / "valid") if (folder / "valid").is_dir() else []
        return midi_files(folder / "train"), valid
    files = midi_files(folder)
    return [f for i, f in enumerate(files) if i % 20 != 19], [f for i, f in enumerate(files) if i % 20 == 19]


def parse_sources(sources: Sequence[str]) -> list[tuple[Path, str | None]]:
    """``"DIR"`` or ``"DIR:STYLE"`` strings to ``(folder, style)`` pairs."""
    out = []
    for source in sources:
        folder, _, style = (
            source.partition(":") if ":" in source and not Path(source).exists() else (source, "", "")
        )
        out.append((Path(folder), style or None))
    return out


def mean_nll(model: MidiLM, windows: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, int]:
    """Total NLL (nats) and number of scored tokens over evaluation windows."""
    total, count = 0.0, 0
    device = next(model.parameters()).device
    with torch.no_grad():
        for x, y in windows:
            total += float(token_loss(model(x.to(device)), y.to(device), reduction="sum"))
            count += int((y != IGNORE).sum())
    return total, count


def train_symbolic(
    sources: Sequence[str],
    run_dir: str | os.PathLike[str],
    config: str = "small",
    steps: int = 2000,
    batch_size: int = 16,
    lr: float = 1e-3,
    seq_len: int | None = None,
    shifts: Sequence[int] = DEFAULT_SHIFTS,
    precision: str = "auto",
    resume: bool = False,
    bpe_vocab: int | None = None,
    eval_every: int = 250,
    max_val_windows: int = 200,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train a MIDI LM and write ``run_dir/best`` and ``run_dir/last`` checkpoints.

    Args:
        sources: MIDI folders, each ``DIR`` or ``DIR:STYLE`` (style token for its pieces).
        run_dir: output folder.
        config: model size name (see :data:`notewave.symbolic.model.CONFIGS`).
        steps, batch_size, lr: optimisation (batch per process).
        seq_len: window length in tokens (default: the model context).
        shifts: transposition augmentation in semitones for the training pieces.
        precision: ``auto`` (bf16 autocast only where the device runs bf16 natively), ``fp32`` or
            ``bf16`` (falls back to fp32 with a warning where not native); see :mod:`notewave.core.precision`.
        resume: continue from ``run_dir/last``.
        bpe_vocab: learn a BPE vocabulary of this size first (miditok ``train``).

    Returns:
        A summary dict (steps, wall time, best validation NLL per token, parameters).

    Raises:
        DataError: missing or empty data folders.
    """
    torch.manual_seed(seed)
    dist_info = setup_distributed()
    run = Path(run_dir)
    pairs = parse_sources(sources)
    if not pairs:
        raise DataError("give at least one MIDI folder with --data")
    styles = sorted({s for _, s in pairs if s})
    if resume:
        model = MidiLM.from_pretrained(run / "last")
        try:
            tokenizer = MidiTokenizer.load(run / "last")
        except TokenizerError as exc:
            raise CheckpointError(f"checkpoint {run / 'last'}: {exc}") from exc
    else:
        tokenizer = MidiTokenizer(styles)
        if bpe_vocab:
            tokenizer.train_bpe(bpe_vocab, [f for folder, _ in pairs for f in split_folder(folder)[0]])
        model = MidiLM(config_for(config, tokenizer, **(overrides or {})))
    length = seq_len or model.context
    progress = dist_info.main
    train_sets, valid_sets = [], []
    for folder, style in pairs:
        train_files, valid_files = split_folder(folder)
        train_sets.append(TokenDataset(train_files, tokenizer, style, shifts, progress=progress))
        if valid_files:
            valid_sets.append(TokenDataset(valid_files, tokenizer, style, (0,), progress=progress))
    train = train_sets[0]
    for extra in train_sets[1:]:
        train.extend(extra)
    windows = [w for v in valid_sets for w in v.eval_windows(length)][:max_val_windows]

    def batch_fn(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = train.sample_batch(batch_size, length, generator)
        return x.to(dist_info.device), y.to(dist_info.device)

    def loss_fn(forward: Any, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return token_loss(forward(x), y)

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        if not windows:
            return {}
        total, count = mean_nll(m, windows)  # type: ignore[arg-type]
        return {"val_loss": total / count}

    cfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup=min(200, steps // 10),
        precision=precision,
        eval_every=eval_every,
        save_every=eval_every,
        seed=seed,
    )

    def save_fn(m: torch.nn.Module, folder: Path, extra: Any, info: dict[str, Any]) -> None:
        files = tokenizer.checkpoint_files(extra)
        m.save_pretrained(folder, extra_config={"training": info}, extra_files=files)  # type: ignore[operator]

    result = Trainer(model, cfg, run, batch_fn, loss_fn, eval_fn, save_fn, dist_info).fit(resume)
    summary = {
        "steps": result["steps"],
        "wall_s": result["wall_s"],
        "train_tokens": train.num_tokens,
        "train_pieces": len(train.pieces),
        "best_val_nll_per_token": result["best_val_loss"],
        "parameters": model.num_parameters(),
        "precision": result["precision"],
        "history": result["history"],
    }
    if dist_info.main:
        (run / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary

"""``notewave train symbolic``: train the composer (:class:`MidiLM` over multitrack tokens).

Data are MIDI folders written by ``notewave data ...`` (``train/``, ``valid/`` and a
``data.json`` giving each piece's style) or any folder of MIDI files with ``DIR:STYLE``.
The pieces are read once into ``RUN/pieces-train.npz`` and ``RUN/pieces-valid.npz``
(:class:`~notewave.symbolic.data.PieceSet`), which later runs and ``--resume`` reuse and
which an accelerator job can carry instead of MIDI files.

Sampling: a piece is drawn with probability proportional to its tokens times a per-style
factor ``(style tokens) ** (style_power - 1)``, so each style's share of the windows grows
with the square root of its size (``style_power`` 0.5): small styles are seen, big ones
do not drown them. Validation reports NLL per token (the loss that picks ``best/``) and
per note for every style.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from notewave.core.io import atomic_open
from notewave.core.train import TrainConfig, Trainer, setup_distributed
from notewave.errors import CheckpointError, ConfigError, DataError, TokenizerError
from notewave.symbolic.data import (
    IGNORE,
    SHIFTS,
    PieceSet,
    bar_sizes,
    eval_windows,
    folder_styles,
    midi_files,
    training_window,
)
from notewave.symbolic.model import MidiLM, config_for
from notewave.symbolic.vocab import Vocab


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
    """Training and validation files of a data folder: ``train/`` and ``valid/`` when present,
    else every 20th file (sorted by path) held out for validation.

    Raises:
        DataError: a missing folder or one without MIDI files.
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
        has_style = ":" in source and not Path(source).exists()
        folder, _, style = source.rpartition(":") if has_style else (source, "", "")
        out.append((Path(folder), style or None))
    return out


def read_sources(sources: Sequence[str], run: Path, progress: bool = True) -> tuple[PieceSet, PieceSet]:
    """Training and validation pieces of ``sources``, cached in ``run/pieces-{train,valid}.npz``."""
    cached = run / "pieces-train.npz", run / "pieces-valid.npz"
    stamp = run / "pieces.json"
    same = stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")).get("sources") == list(sources)
    if same and all(path.is_file() for path in cached):
        return PieceSet.load(cached[0]), PieceSet.load(cached[1])
    pairs = parse_sources(sources)
    if not pairs:
        raise DataError("give at least one MIDI folder with --data")
    train, valid = PieceSet(), PieceSet()
    for folder, style in pairs:
        train_files, valid_files = split_folder(folder)
        labels = folder_styles(folder, style)
        train.extend(PieceSet.from_files(train_files, style, progress, labels))
        valid.extend(PieceSet.from_files(valid_files, style, progress, labels))
    if not train.pieces:
        raise DataError(f"none of the MIDI files in {', '.join(str(f) for f, _ in pairs)} could be read")
    run.mkdir(parents=True, exist_ok=True)
    train.save(cached[0])
    valid.save(cached[1])
    with atomic_open(stamp) as handle:
        json.dump({"sources": list(sources), "train": len(train.pieces), "valid": len(valid.pieces)}, handle)
    return train, valid


def piece_weights(
    vocab: Vocab, pieces: PieceSet, style_power: float = 0.5, boost: dict[str, float] | None = None
) -> np.ndarray:
    """Sampling probability of each piece (see the module docstring; ``boost`` multiplies the
    share of the named styles), float64 ``[N]``."""
    tokens = np.asarray([bar_sizes(vocab, p).sum() for p in pieces.pieces], dtype=np.float64)
    totals: dict[str | None, float] = {}
    for style, count in zip(pieces.styles, tokens, strict=True):
        totals[style] = totals.get(style, 0.0) + count
    boost = boost or {}
    factor = np.asarray([totals[s] ** (style_power - 1.0) * boost.get(s or "", 1.0) for s in pieces.styles])
    weights = tokens * factor
    return weights / weights.sum()


def kind_labels(vocab: Vocab) -> tuple[list[str], torch.Tensor]:
    """Token-kind names (``Pitch``, ``Pos``, ..., and the specials ``Bar``, ``EOS``, ``Fill``... by
    name) and the kind index of every id, int64 ``[vocab size]``, for NLL by kind."""
    names: list[str] = []
    index = torch.zeros(len(vocab), dtype=torch.long)
    for token in range(len(vocab)):
        kind = vocab.kind(token)
        name = vocab.name(token) if kind == "special" else kind
        if name not in names:
            names.append(name)
        index[token] = names.index(name)
    return names, index


def style_nll(
    model: MidiLM, vocab: Vocab, pieces: PieceSet, max_windows: int | None = None
) -> dict[str, dict[str, Any]]:
    """Per style: NLL per token and per note (nats) of the pieces (every bar token scored once;
    ``max_windows`` caps the windows per style, the first pieces in order), and ``by_kind``: the
    nats per note spent on each kind of token (``Pitch``, ``Pos``, ``Dur``, ``Track``, ``Bar``...;
    they add up to the NLL per note)."""
    device = next(model.parameters()).device
    names, kinds = kind_labels(vocab)
    out: dict[str, dict[str, Any]] = {}
    grouped: dict[str, list[int]] = {}
    for index, style in enumerate(pieces.styles):
        grouped.setdefault(style or "none", []).append(index)
    for style, indices in sorted(grouped.items()):
        by_kind = torch.zeros(len(names), dtype=torch.float64)
        tokens, notes, windows = 0, 0, 0
        for index in indices:
            piece = pieces.pieces[index]
            label = style if style in vocab.styles else None
            batch = eval_windows(vocab, piece, label, model.context)
            if max_windows is not None and windows + len(batch) > max_windows and windows:
                break
            x = torch.tensor([w[0] for w in batch], device=device)
            y = torch.tensor([w[1] for w in batch], device=device)
            cursor = model.cursor_rows(vocab, x)
            losses = token_loss(model(x, cursor=cursor), y, reduction="none").double().cpu()
            scored = (y != IGNORE).reshape(-1).cpu()
            by_kind += torch.bincount(kinds[y.reshape(-1).cpu()[scored]], losses[scored], len(names))
            tokens += int(scored.sum())
            notes += len(piece.notes)
            windows += len(batch)
        if tokens:
            total, per_note = float(by_kind.sum()), by_kind / max(notes, 1)
            out[style] = {
                "nll_per_token": total / tokens,
                "nll_per_note": total / max(notes, 1),
                "notes": notes,
                "by_kind": {n: v for n, v in zip(names, per_note.tolist(), strict=True) if v},
            }
    return out


def train_symbolic(
    sources: Sequence[str],
    run_dir: str | os.PathLike[str],
    config: str = "medium",
    steps: int = 2000,
    batch_size: int = 16,
    lr: float = 1e-3,
    seq_len: int | None = None,
    shifts: Sequence[int] = SHIFTS,
    precision: str = "auto",
    resume: bool = False,
    eval_every: int = 250,
    max_val_windows: int = 40,
    fill_share: float = 0.3,
    style_power: float = 0.5,
    seed: int = 0,
    styles: Sequence[str] | None = None,
    init: str | os.PathLike[str] | None = None,
    boost: dict[str, float] | None = None,
    overrides: dict[str, Any] | None = None,
    cursor: bool = False,
    harmony: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a composer and write ``run_dir/best`` and ``run_dir/last`` checkpoints.

    Args:
        sources: MIDI folders, each ``DIR`` or ``DIR:STYLE`` (a ``data.json`` in ``DIR`` gives
            styles per piece; ``STYLE`` is the default).
        run_dir: output folder (also caches the pieces).
        config: model size name (:data:`notewave.symbolic.model.CONFIGS`).
        steps, batch_size, lr: optimisation (batch per process).
        seq_len: window length in tokens (default: the model context).
        shifts: transposition augmentation in semitones.
        precision: ``auto``, ``fp32`` or ``bf16`` (see :mod:`notewave.core.precision`).
        resume: continue from ``run_dir/last``.
        max_val_windows: validation windows per style at each evaluation.
        fill_share: share of windows in the bar-fill (infilling) layout.
        style_power: styles are sampled in proportion to their size to this power.
        styles: the style tokens of a new model (default: the styles of the training pieces);
            give more to add data of other styles later with ``resume``.
        boost: ``{style: factor}`` multiplying those styles' share of the windows.
        init: start a new run from the weights and vocabulary of this checkpoint folder (e.g. the
            shipped composer) with a fresh optimizer: how training goes on across machines that
            did not keep ``run_dir``.
        cursor: give the model the metrical cursor embedding (:mod:`notewave.symbolic.cursor`);
            with ``init`` from a model without one, the new table starts at zero.
        harmony: also the other tracks' sounding pitches at each onset (implies ``cursor``; with
            ``init`` from a cursor model, its table grows by zero rows).

    Returns:
        A summary dict (steps, wall time, best validation NLL per token, parameters, per-style NLL).

    Raises:
        DataError: missing or empty data folders.
        CheckpointError: ``resume`` without a readable ``run_dir/last``.
        ConfigError: ``cursor``/``harmony`` with ``resume`` of a run whose model lacks them.
    """
    torch.manual_seed(seed)
    dist_info = setup_distributed()
    run = Path(run_dir)
    train, valid = read_sources(sources, run, progress and dist_info.main)
    if resume or init is not None:
        source = run / "last" if resume else Path(init)  # type: ignore[arg-type]
        model = MidiLM.from_pretrained(source).float()
        try:
            vocab = Vocab.load(source)
        except TokenizerError as exc:
            raise CheckpointError(f"checkpoint {source}: {exc}") from exc
        if (cursor and not model.config.cursor) or (harmony and not model.config.harmony):
            if resume:
                raise ConfigError(
                    f"{run / 'last'} has no cursor table (or no harmony rows): add them with --init "
                    f"{run / 'last'} --cursor [--harmony] and a new --out folder"
                )
            model.add_cursor(harmony=harmony)
    else:
        vocab = Vocab(list(styles) if styles else sorted({s for s in train.styles if s}))
        model = MidiLM(config_for(config, vocab, **(overrides or {})))
        if cursor or harmony:
            model.add_cursor(harmony=harmony)
    length = seq_len or model.context
    weights = piece_weights(vocab, train, style_power, boost)

    def batch_fn(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        chosen = rng.choice(len(train.pieces), size=batch_size, p=weights)
        pairs = [
            training_window(vocab, train.pieces[i], train.styles[i], length, rng, shifts, fill_share)
            for i in chosen
        ]
        x = torch.tensor([p[0] for p in pairs], device=dist_info.device)
        y = torch.tensor([p[1] for p in pairs], device=dist_info.device)
        return x, y, model.cursor_rows(vocab, x)

    def loss_fn(forward: Any, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return token_loss(forward(batch[0], cursor=batch[2]), batch[1])

    def eval_fn(m: torch.nn.Module) -> dict[str, Any]:
        if not valid.pieces:
            return {}
        per_style = style_nll(m, vocab, valid, max_val_windows)  # type: ignore[arg-type]
        notes = sum(v["notes"] for v in per_style.values())
        token_mean = sum(v["nll_per_token"] * v["notes"] for v in per_style.values()) / max(notes, 1)
        return {
            "val_loss": token_mean,
            "val_nll_per_note": {k: round(v["nll_per_note"], 4) for k, v in per_style.items()},
        }

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
        def files(tmp: Path) -> None:
            vocab.save(tmp)
            extra(tmp)

        m.save_pretrained(folder, extra_config={"training": info}, extra_files=files)  # type: ignore[operator]

    result = Trainer(model, cfg, run, batch_fn, loss_fn, eval_fn, save_fn, dist_info).fit(resume)
    summary = {
        "steps": result["steps"],
        "wall_s": result["wall_s"],
        "train_pieces": len(train.pieces),
        "train_notes": train.notes,
        "best_val_nll_per_token": result["best_val_loss"],
        "parameters": model.num_parameters(),
        "precision": result["precision"],
        "history": result["history"],
    }
    if dist_info.main:
        (run / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary

"""Checkpoint averaging: the weighted mean of checkpoints of one network ("model soup").

Averaging the weights of networks fine-tuned from one initialisation often scores better than
either of them, at no cost at inference (Wortsman et al. 2022, "Model soups: averaging weights of
multiple fine-tuned models improves accuracy without increasing inference time", ICML; checkpoint
averaging as in Vaswani et al. 2017). Weights of unrelated training runs do not average to a working
network: the checkpoints must share their architecture and, to be useful, an initialisation.

Works on any notewave checkpoint folder (``model.safetensors`` + ``config.json``, see
:mod:`notewave.core.checkpoint`): floating-point tensors are averaged in float64 and stored in their
own dtype; integer tensors (BatchNorm step counters) are taken from the first checkpoint; 8-bit
integer tensors (quantized weights) are refused. The config is the first checkpoint's, with an
``average`` record (the sources, their weights and their ``training`` records).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from notewave.core.checkpoint import read_checkpoint, write_checkpoint
from notewave.errors import CheckpointError, ConfigError

PathLike = str | os.PathLike[str]


def _architecture(config: dict, canonical: Callable[[dict], dict] | None = None) -> dict:
    """The config (through ``canonical`` when given) without its training record: what must match for
    weights to be averaged."""
    full = canonical(config) if canonical is not None else config
    return {k: v for k, v in full.items() if k not in ("training", "average")}


def average_checkpoints(
    sources: Sequence[PathLike],
    out: PathLike,
    weights: Sequence[float] | None = None,
    canonical: Callable[[dict], dict] | None = None,
) -> Path:
    """Write the weighted mean of the checkpoints ``sources`` to the folder ``out`` (atomically).

    Args:
        sources: two or more checkpoint folders of one architecture (same ``config.json`` apart from
            ``training``; same tensor names, shapes and dtypes).
        out: the new checkpoint folder (replaced when it exists; may not be one of ``sources``).
        weights: one non-negative weight per source, normalised to sum 1 (default: uniform).
        canonical: maps a ``config.json`` dict to its canonical form before the architectures are
            compared, e.g. the model config's round trip that fills in the defaults of fields newer
            than an older checkpoint (default: compared as stored).

    Returns:
        The folder ``out``; load it as the sources are loaded (e.g.
        :func:`notewave.bridge.transcription.transcribe.load_transcriber`).

    Raises:
        ConfigError: fewer than two sources, ``out`` among them, or bad weights.
        CheckpointError: an unreadable source, or sources that differ in architecture, tensor names,
            shapes or dtypes, or hold 8-bit integer (quantized) tensors.
    """
    paths = [Path(p) for p in sources]
    if len(paths) < 2:
        raise ConfigError(f"averaging needs at least two checkpoints, got {len(paths)}")
    target = Path(out)
    if any(p.resolve() == target.resolve() for p in paths):
        raise ConfigError(f"the averaged checkpoint {target} may not overwrite one of its sources")
    w = [1.0] * len(paths) if weights is None else [float(x) for x in weights]
    if len(w) != len(paths) or any(not x >= 0 for x in w) or sum(w) <= 0:
        raise ConfigError(f"weights must be {len(paths)} non-negative numbers, not all 0, got {weights!r}")
    w = [x / sum(w) for x in w]
    first_tensors, first_config = read_checkpoint(paths[0])
    for name, tensor in first_tensors.items():
        if tensor.dtype in (torch.int8, torch.uint8):
            raise CheckpointError(f"tensor {name} of {paths[0]} is quantized ({tensor.dtype}): not averaged")
    acc = {k: v.double() * w[0] for k, v in first_tensors.items() if v.is_floating_point()}
    records, theirs = [first_config.get("training")], _architecture(first_config, canonical)
    for path, weight in zip(paths[1:], w[1:]):
        tensors, config = read_checkpoint(path)
        mine = _architecture(config, canonical)
        if mine != theirs:
            diff = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            raise CheckpointError(f"checkpoint {path} differs from {paths[0]} in {', '.join(diff)}")
        if tensors.keys() != first_tensors.keys():
            extra = sorted(set(tensors) ^ set(first_tensors))[:3]
            raise CheckpointError(f"checkpoint {path} has other tensors than {paths[0]} (e.g. {extra})")
        for name, tensor in tensors.items():
            ref = first_tensors[name]
            if tensor.shape != ref.shape or tensor.dtype != ref.dtype:
                raise CheckpointError(
                    f"tensor {name} of {path} is {tuple(tensor.shape)} {tensor.dtype}, "
                    f"of {paths[0]} {tuple(ref.shape)} {ref.dtype}"
                )
            if tensor.is_floating_point():
                acc[name] += tensor.double() * weight
        records.append(config.get("training"))
    averaged = {k: acc[k].to(v.dtype) if k in acc else v for k, v in first_tensors.items()}
    config = dict(first_config)
    config["average"] = {
        "sources": [str(p) for p in paths],
        "weights": w,
        "training": records,
        "method": "weighted mean of the float tensors (model soup, Wortsman et al. 2022)",
    }
    return write_checkpoint(target, averaged, config)

"""``notewave train audio-lm``: train an :class:`~notewave.audio.lm.model.AudioLM` on the codes of real audio.

The training data (audio folders encoded by the frozen codec, MIDI folders rendered with
FluidSynth, each with its chroma, text and style tag, cached in ``RUN_DIR/data.safetensors``) is
prepared by :mod:`notewave.audio.lm.data`, which also describes the sources and the validation split.

Training draws random crops of ``--segment`` seconds with condition
dropout; validation scores fixed windows of held-out tracks with all conditions
(``val_loss``) and with none (``val_loss_uncond``), in nats per code. Optimisation, checkpoints
(``best/``, ``last/``) and ``--resume`` are the shared :class:`~notewave.core.train.Trainer`'s.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from notewave.audio.lm.codec_link import check_codec, codec_identity
from notewave.audio.lm.conditioning import ConditionConfig, ConditionEncoder, Conditions
from notewave.audio.lm.data import (
    DEFAULT_AUDIO_TEXT,
    DEFAULT_MIDI_TEXT,
    CropSampler,
    Track,
    load_tracks,
    prepare_tracks,
    save_tracks,
)
from notewave.audio.lm.model import AudioLM, AudioLMConfig, codes_loss
from notewave.audio.lm.patterns import get_pattern
from notewave.audio.lm.text import embed_text
from notewave.core.train import TrainConfig, Trainer, setup_distributed
from notewave.core.transformer import TransformerConfig
from notewave.errors import CheckpointError, ConfigError, DataError

__all__ = ["CONFIGS", "config_for", "prepare_tracks", "train_audio_lm"]


# Named transformer sizes for `notewave train audio-lm --config NAME` (max_seq_len is derived).
CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"d_model": 32, "n_layers": 2, "n_heads": 2, "dropout": 0.0},
    "small": {"d_model": 128, "n_layers": 4, "n_heads": 4, "dropout": 0.0},
    "medium": {"d_model": 256, "n_layers": 6, "n_heads": 8, "dropout": 0.1},
    "large": {"d_model": 512, "n_layers": 12, "n_heads": 8, "dropout": 0.1},
}


def config_for(
    name: str,
    codec: Any,
    pattern: str = "delay",
    seconds: float = 5.0,
    conditions: ConditionConfig | None = None,
    num_codebooks: int | None = None,
    **overrides: Any,
) -> AudioLMConfig:
    """An :class:`AudioLMConfig` of a named size (:data:`CONFIGS`) for ``codec``'s codes.

    Args:
        name: size name.
        codec: a :class:`~notewave.audio.codec.model.Codec` (its K, N, rates and identity are used).
        pattern: codebook pattern.
        seconds: the training window (``max_frames = ceil(seconds * frame_rate)``).
        conditions: condition config (default: melody, text, no styles).
        num_codebooks: model the first K of the codec's main codebooks (default: all K main ones); a
            codec trained with quantizer dropout decodes any 1..K of them. A detail stream's codebooks
            (after the K main ones) are not modelled: ``codes_hash`` does not cover them.
        overrides: transformer fields replacing the named size's.

    Raises:
        ConfigError: unknown name or pattern, or ``num_codebooks`` outside 1..codec's K main codebooks.
    """
    main = codec.config.num_codebooks
    k = main if num_codebooks is None else int(num_codebooks)
    if not 1 <= k <= main:
        raise ConfigError(f"num_codebooks must be in 1..{main} (the codec's main codebooks), not {k}")
    if name not in CONFIGS:
        raise ConfigError(f"unknown audio LM config {name!r}; choose one of {sorted(CONFIGS)}")
    conditions = conditions or ConditionConfig()
    max_frames = max(1, math.ceil(seconds * codec.frame_rate - 1e-6))
    pat = get_pattern(pattern, k)
    enc = ConditionEncoder(conditions, 8, max_frames)
    sizes = {**CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None}}
    sizes["max_seq_len"] = enc.prefix_length + pat.num_steps(max_frames)
    return AudioLMConfig(
        k,
        codec.codebook_size,
        TransformerConfig(**sizes),
        conditions,
        pattern,
        max_frames,
        int(codec.sample_rate),
        float(codec.frame_rate),
        codec_identity(codec),
    )


def resolve_codec_dir(path: str | os.PathLike[str]) -> Path:
    """A codec checkpoint folder from a codec run folder (``best/`` or ``last/`` inside) or a checkpoint.

    Raises:
        CheckpointError: nothing usable at ``path``.
    """
    folder = Path(path)
    for candidate in (folder, folder / "best", folder / "last"):
        if (candidate / "config.json").is_file():
            return candidate
    raise CheckpointError(f"no codec checkpoint (config.json) in {folder} or its best/ or last/ folders")


def evaluate_windows(
    model: AudioLM, sampler: CropSampler, windows: list[tuple[Track, int]], batch: int = 8
) -> dict[str, float]:
    """Mean NLL (nats per code) of ``windows`` with all conditions and with none."""
    if not windows:
        return {}
    device = next(model.parameters()).device
    totals = {"val_loss": 0.0, "val_loss_uncond": 0.0}
    count = 0
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            items = windows[i : i + batch]
            codes = torch.stack([t.codes[:, s : s + sampler.frames] for t, s in items]).to(device)
            cond = sampler.conditions(items).to(device)
            for key, c in (("val_loss", cond), ("val_loss_uncond", cond.null())):
                _, per_book = model.loss(codes, c, reduction="sum")
                totals[key] += float(per_book.sum())
            count += codes.numel()
    return {k: v / count for k, v in totals.items()}


def train_audio_lm(
    codec_path: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    audio: Sequence[str] = (),
    midi: Sequence[str] = (),
    config: str = "small",
    pattern: str = "delay",
    segment: float = 5.0,
    steps: int = 2000,
    batch_size: int = 8,
    lr: float = 1e-3,
    eval_every: int = 250,
    resume: bool = False,
    text: bool = True,
    melody: bool = True,
    cond_dropout: float = 0.3,
    all_dropout: float = 0.1,
    chroma_downsample: int = 2,
    melody_fuse: str = "prefix",
    audio_text: str = DEFAULT_AUDIO_TEXT,
    midi_text: str = DEFAULT_MIDI_TEXT,
    max_files: int | None = None,
    max_seconds: float | None = None,
    max_val_windows: int = 48,
    seed: int = 0,
    precision: str = "auto",
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
    num_codebooks: int | None = None,
) -> dict[str, Any]:
    """Train an audio LM and write ``run_dir/best`` and ``run_dir/last``; returns a summary dict.

    Args:
        codec_path: a codec checkpoint or a codec run folder (``best/`` is used).
        run_dir: output folder.
        audio, midi: ``DIR`` or ``DIR:STYLE`` sources (see the module docstring).
        config: model size (:data:`notewave.audio.lm.model.CONFIGS`); pattern: codebook pattern.
        segment: training window in seconds; steps, batch_size, lr, eval_every: optimisation.
        text, melody: which conditions the model takes (styles come from the sources).
        cond_dropout, all_dropout: condition dropout probabilities; chroma_downsample: frames per
            melody position; melody_fuse: ``"prefix"`` or ``"sum"`` (see
            :class:`~notewave.audio.lm.conditioning.ConditionConfig`).
        max_files: at most this many training files per source; max_seconds: per file.
        precision: ``auto`` (bf16 autocast only where the device runs bf16 natively), ``fp32`` or
            ``bf16`` (falls back to fp32 with a warning where not native); see :mod:`notewave.core.precision`.
        num_codebooks: model the first K of the codec's codebooks (default all; see :func:`config_for`).

    Raises:
        DataError: missing/empty data or no track as long as ``segment``.
        ConfigError: ``num_codebooks`` outside 1..the codec's K.
        CheckpointError: an unusable codec, or a run to resume that does not match.
    """
    from notewave.audio.codec.model import Codec

    torch.manual_seed(seed)
    dist_info = setup_distributed()
    run = Path(run_dir)
    codec_dir = resolve_codec_dir(codec_path)
    codec = Codec.from_pretrained(codec_dir)
    start_time = time.perf_counter()
    meta = {
        "codec": codec.fingerprint(), "audio": list(audio), "midi": list(midi), "audio_text": audio_text,
        "midi_text": midi_text, "max_files": max_files, "max_seconds": max_seconds,
    }  # fmt: skip
    cache = run / "data.safetensors"
    loaded = load_tracks(cache, meta)
    if loaded is None:
        train_tracks, valid_tracks = prepare_tracks(
            codec, audio, midi, audio_text, midi_text, max_files, max_seconds, progress and dist_info.main
        )
        if dist_info.main:
            save_tracks(cache, {"train": train_tracks, "valid": valid_tracks}, meta)
    else:
        train_tracks, valid_tracks = loaded["train"], loaded.get("valid", [])
    prep_s = time.perf_counter() - start_time
    styles = sorted({t.style for t in train_tracks + valid_tracks if t.style})
    if resume:
        model = AudioLM.from_pretrained(run / "last")
    else:
        cond_cfg = ConditionConfig(
            styles, text=text, melody=melody, chroma_downsample=chroma_downsample, melody_fuse=melody_fuse,
            dropout=cond_dropout, all_dropout=all_dropout,
        )  # fmt: skip
        model = AudioLM(
            config_for(config, codec, pattern, segment, cond_cfg, num_codebooks, **(overrides or {}))
        )
    model.config.codec = check_codec(model.config, codec)
    for track in train_tracks + valid_tracks:  # the cache holds all K codebooks; keep the model's
        track.codes = track.codes[: model.num_codebooks]
    cond_cfg = model.config.conditions
    texts: dict[str, torch.Tensor] = {}
    if cond_cfg.text:
        names = sorted({t.text for t in train_tracks + valid_tracks if t.text})
        texts = dict(zip(names, embed_text(names)))
    frames = model.max_frames
    train = CropSampler(train_tracks, frames, cond_cfg, texts)
    valid = CropSampler(valid_tracks, frames, cond_cfg, texts)
    if not train.tracks:
        raise DataError(f"no training track is as long as the {segment} s segment ({frames} frames)")
    windows = valid.windows(max_val_windows)

    def batch_fn(generator: torch.Generator) -> tuple[torch.Tensor, Conditions]:
        codes, cond = train.batch(batch_size, generator)
        cond = cond.drop(cond_cfg.dropout, cond_cfg.all_dropout, generator)
        return codes.to(dist_info.device), cond.to(dist_info.device)

    def loss_fn(forward: Any, batch: tuple[torch.Tensor, Conditions]) -> torch.Tensor:
        codes, cond = batch
        seq, mask = model.pattern.build(codes, model.special)
        return codes_loss(forward(model.input_tokens(seq), cond, None, codes.shape[2]), seq, mask)[0]

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        return evaluate_windows(m, valid, windows)  # type: ignore[arg-type]

    def save_fn(m: torch.nn.Module, folder: Path, extra: Any, info: dict[str, Any]) -> None:
        m.save_pretrained(
            folder, extra_config={"training": info}, extra_files=extra, codec_path=codec_dir.resolve()
        )  # type: ignore[operator]

    cfg = TrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, warmup=min(100, steps // 10), eval_every=eval_every,
        save_every=eval_every, seed=seed, precision=precision,
    )  # fmt: skip
    result = Trainer(model, cfg, run, batch_fn, loss_fn, eval_fn, save_fn, dist_info).fit(resume)
    summary = {
        "steps": result["steps"],
        "wall_s": result["wall_s"],
        "precision": result["precision"],
        "prepare_s": round(prep_s, 1),
        "train_tracks": len(train.tracks),
        "train_hours": round(sum(t.codes.shape[1] for t in train.tracks) / codec.frame_rate / 3600, 3),
        "valid_windows": len(windows),
        "best_val_loss": result["best_val_loss"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "styles": styles,
        "history": result["history"],
    }
    if dist_info.main:
        (run / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary

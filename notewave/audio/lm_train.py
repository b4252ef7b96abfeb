"""``notewave train audio-lm``: train an :class:`~notewave.audio.lm.AudioLM` on codec codes of real audio.

Data preparation (once, kept in memory and cached in ``RUN_DIR/data.safetensors``):

* audio folders (``--audio DIR[:STYLE]``; WAV/FLAC/OGG/MP3, searched recursively): each track is
  loaded as mono at the codec rate, encoded by the frozen codec into codes ``[K, T]`` and
  analysed into a per-frame argmax chroma ``[T]`` (:func:`~notewave.bridge.chroma.chroma_from_audio`);
  its text is ``--audio-text`` with ``{title}`` (the file name in words) and ``{style}`` filled in;
* MIDI folders (``--midi DIR[:STYLE]``): each file is rendered with FluidSynth
  (:func:`~notewave.bridge.render.render_midi`) and encoded; its chroma comes straight from the
  notes (:func:`~notewave.bridge.chroma.chroma_from_midi`), its text is ``--midi-text``;
* the style tag of a folder is ``STYLE`` or the folder's name (its parent's for
  ``train``/``valid``/``test`` folders).

Held out for validation: a folder's ``valid/`` subfolder when it has ``train/`` and ``valid/``,
otherwise every 10th file. Training draws random crops of ``--segment`` seconds with condition
dropout; validation scores fixed windows of held-out tracks with all conditions
(``val_loss``) and with none (``val_loss_uncond``), in nats per code. Optimisation, checkpoints
(``best/``, ``last/``) and ``--resume`` are the shared :class:`~notewave.core.train.Trainer`'s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from notewave.audio.conditioning import (
    AUDIO_SUFFIXES,
    MIDI_SUFFIXES,
    ConditionConfig,
    ConditionEncoder,
    Conditions,
    embed_text,
)
from notewave.audio.generate import add_generate_cli, codec_identity
from notewave.audio.lm import AudioLM, AudioLMConfig, codes_loss
from notewave.audio.patterns import get_pattern
from notewave.core.io import atomic_path
from notewave.core.train import TrainConfig, Trainer, setup_distributed
from notewave.core.transformer import TransformerConfig
from notewave.errors import CheckpointError, ConfigError, DataError

__all__ = ["CONFIGS", "add_cli", "add_generate_cli", "config_for", "prepare_tracks", "train_audio_lm"]

DEFAULT_AUDIO_TEXT = "{style} music: {title}"
DEFAULT_MIDI_TEXT = "Bach chorale, church organ"
_SPLIT_NAMES = ("train", "valid", "test")
_CHUNK_SECONDS = 20.0  # the codec encodes long tracks in pieces of this length


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
    **overrides: Any,
) -> AudioLMConfig:
    """An :class:`AudioLMConfig` of a named size (:data:`CONFIGS`) for ``codec``'s codes.

    Args:
        name: size name.
        codec: a :class:`~notewave.audio.codec.Codec` (its K, N, rates and identity are used).
        pattern: codebook pattern.
        seconds: the training window (``max_frames = ceil(seconds * frame_rate)``).
        conditions: condition config (default: melody, text, no styles).
        overrides: transformer fields replacing the named size's.

    Raises:
        ConfigError: unknown name or pattern.
    """
    if name not in CONFIGS:
        raise ConfigError(f"unknown audio LM config {name!r}; choose one of {sorted(CONFIGS)}")
    conditions = conditions or ConditionConfig()
    max_frames = max(1, math.ceil(seconds * codec.frame_rate - 1e-6))
    pat = get_pattern(pattern, codec.num_codebooks)
    enc = ConditionEncoder(conditions, 8, max_frames)
    sizes = {**CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None}}
    sizes["max_seq_len"] = enc.prefix_length + pat.num_steps(max_frames)
    return AudioLMConfig(
        codec.num_codebooks,
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


@dataclass
class Track:
    """One encoded track: codes int64 ``[K, T]``, argmax chroma int64 ``[T]`` (-1 silent), text, style."""

    name: str
    codes: torch.Tensor
    chroma: torch.Tensor
    text: str | None
    style: str | None


def parse_source(source: str) -> tuple[Path, str]:
    """``"DIR"`` or ``"DIR:STYLE"`` -> ``(folder, style)``; the default style is the folder's name."""
    folder, _, style = (
        source.rpartition(":") if ":" in source and not Path(source).exists() else (source, "", "")
    )
    path = Path(folder)
    if not style:
        style = path.parent.name if path.name in _SPLIT_NAMES else path.name
    return path, style or "default"


def title_words(path: Path) -> str:
    """A file name in words: ``the_king-is_dead.ogg`` -> ``"the king is dead"``."""
    return re.sub(r"[\s_\-.]+", " ", path.stem).strip()


def split_files(folder: Path, suffixes: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """Training and validation files: ``train/`` + ``valid/`` subfolders, else every 10th file held out."""
    if not folder.is_dir():
        raise DataError(f"data folder not found: {folder}")

    def files(where: Path) -> list[Path]:
        return sorted(p for p in where.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)

    if (folder / "train").is_dir() and (folder / "valid").is_dir():
        train, valid = files(folder / "train"), files(folder / "valid")
    else:
        every = files(folder)
        held = {i for i in range(len(every)) if i % 10 == 9} or (
            {len(every) - 1} if len(every) > 1 else set()
        )
        train = [p for i, p in enumerate(every) if i not in held]
        valid = [p for i, p in enumerate(every) if i in held]
    if not train:
        raise DataError(f"no files ({', '.join(suffixes)}) in {folder}")
    return train, valid


def _encode(codec: Any, wav: np.ndarray) -> torch.Tensor:
    """Codes int64 ``[K, ceil(N / hop)]`` of mono float32 ``[1, N]`` audio, encoded in chunks."""
    chunk = int(_CHUNK_SECONDS * codec.frame_rate) * codec.hop_length
    parts = [
        codec.encode(torch.from_numpy(wav[None, :, i : i + chunk])) for i in range(0, wav.shape[-1], chunk)
    ]
    return torch.cat(parts, dim=2)[0]


def _argmax_index(chroma: np.ndarray) -> torch.Tensor:
    """``[12, T]`` chroma -> int64 ``[T]`` strongest pitch class, -1 for silent frames."""
    index = chroma.argmax(0).astype(np.int64)
    index[chroma.max(0) <= 0] = -1
    return torch.from_numpy(index)


def encode_track(
    codec: Any, path: Path, kind: str, text: str | None, style: str, max_seconds: float | None
) -> Track:
    """Encode one audio (``kind="audio"``) or MIDI (``"midi"``, rendered) file into a :class:`Track`.

    Raises:
        AudioError, MidiError, RenderError, SoundfontError: unreadable files or no FluidSynth.
    """
    from notewave.bridge.chroma import chroma_from_audio, chroma_from_midi
    from notewave.core.audio_io import load_audio

    rate = codec.sample_rate
    if kind == "audio":
        wav, _ = load_audio(path, rate, mono=True, duration=max_seconds)
        chroma = chroma_from_audio(wav, rate, frame_rate=codec.frame_rate, argmax=True)
    else:
        from notewave.bridge.render import render_midi

        wav, _ = render_midi(path, sample_rate=rate, normalize="loudness")
        if max_seconds is not None:
            wav = wav[:, : int(max_seconds * rate)]
        seconds = wav.shape[-1] / rate
        chroma = chroma_from_midi(path, frame_rate=codec.frame_rate, duration=seconds, argmax=True)
    codes = _encode(codec, wav)
    frames = codes.shape[1]
    index = _argmax_index(chroma)[:frames]
    index = torch.cat([index, index.new_full((frames - index.shape[0],), -1)])
    return Track(f"{kind}:{path}", codes, index, text, style)


def prepare_tracks(
    codec: Any,
    audio: Sequence[str] = (),
    midi: Sequence[str] = (),
    audio_text: str = DEFAULT_AUDIO_TEXT,
    midi_text: str = DEFAULT_MIDI_TEXT,
    max_files: int | None = None,
    max_seconds: float | None = None,
    progress: bool = True,
) -> tuple[list[Track], list[Track]]:
    """Encode every source into training and validation :class:`Track` lists (see the module docstring).

    Raises:
        DataError: no sources, a missing folder or an empty one.
    """
    from tqdm import tqdm

    jobs: list[tuple[Path, str, str, str, bool]] = []
    for sources, kind, suffixes in ((audio, "audio", AUDIO_SUFFIXES), (midi, "midi", MIDI_SUFFIXES)):
        for source in sources:
            folder, style = parse_source(source)
            train, valid = split_files(folder, suffixes)
            if max_files is not None:
                train, valid = train[:max_files], valid[: max(1, max_files // 10)]
            for path in train + valid:
                template = audio_text if kind == "audio" else midi_text
                text = template.format(title=title_words(path), style=style)
                jobs.append((path, kind, text, style, path in valid))
    if not jobs:
        raise DataError("give at least one --audio or --midi folder")
    train_tracks, valid_tracks = [], []
    for path, kind, text, style, held in tqdm(jobs, desc="encode", unit="file", disable=not progress):
        track = encode_track(codec, path, kind, text, style, max_seconds)
        (valid_tracks if held else train_tracks).append(track)
    return train_tracks, valid_tracks


def save_tracks(path: Path, tracks: dict[str, list[Track]], meta: dict[str, Any]) -> None:
    """Cache encoded tracks in one safetensors file (atomic); ``meta`` must match to reuse it."""
    tensors, info = {}, {"meta": meta, "splits": {}}
    for split, items in tracks.items():
        info["splits"][split] = [{"name": t.name, "text": t.text, "style": t.style} for t in items]
        for i, track in enumerate(items):
            tensors[f"{split}.{i}.codes"] = track.codes.to(torch.int16).contiguous()
            tensors[f"{split}.{i}.chroma"] = track.chroma.to(torch.int8).contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"info": json.dumps(info)})


def load_tracks(path: Path, meta: dict[str, Any]) -> dict[str, list[Track]] | None:
    """Tracks cached by :func:`save_tracks` with the same ``meta``, or ``None``."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            info = json.loads(handle.metadata()["info"])
            if info["meta"] != meta:
                return None
            return {
                split: [
                    Track(
                        t["name"],
                        handle.get_tensor(f"{split}.{i}.codes").long(),
                        handle.get_tensor(f"{split}.{i}.chroma").long(),
                        t["text"],
                        t["style"],
                    )
                    for i, t in enumerate(items)
                ]
                for split, items in info["splits"].items()
            }
    except Exception:
        return None


def one_hot_chroma(index: torch.Tensor) -> torch.Tensor:
    """int64 ``[..., T]`` pitch-class indices (-1 silent) -> float32 ``[..., 12, T]`` one-hot chroma."""
    hot = torch.nn.functional.one_hot(index.clamp(min=0), 12).float() * (index >= 0).unsqueeze(-1).float()
    return hot.movedim(-1, -2)


class CropSampler:
    """Random (training) or fixed (validation) windows of ``frames`` frames with their conditions."""

    def __init__(
        self, tracks: Sequence[Track], frames: int, config: ConditionConfig, texts: dict[str, torch.Tensor]
    ):
        self.tracks = [t for t in tracks if t.codes.shape[1] >= frames]
        self.frames, self.config, self.texts = frames, config, texts
        lengths = torch.tensor([t.codes.shape[1] - frames + 1 for t in self.tracks], dtype=torch.float)
        self.weights = lengths / lengths.sum() if len(self.tracks) else lengths

    def conditions(self, items: Sequence[tuple[Track, int]]) -> Conditions:
        cond = Conditions.empty(len(items), self.frames, self.config.text_dim)
        for row, (track, start) in enumerate(items):
            if self.config.melody:
                cond.melody[row] = one_hot_chroma(track.chroma[start : start + self.frames])
                cond.has_melody[row] = True
            if self.config.text and track.text in self.texts:
                cond.text[row] = self.texts[track.text]
                cond.has_text[row] = True
            if track.style in self.config.styles:
                cond.style[row] = self.config.styles.index(track.style)
        return cond

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, Conditions]:
        picks = torch.multinomial(self.weights, size, replacement=True, generator=generator).tolist()
        items = []
        for i in picks:
            track = self.tracks[i]
            start = int(torch.randint(track.codes.shape[1] - self.frames + 1, (1,), generator=generator))
            items.append((track, start))
        codes = torch.stack([t.codes[:, s : s + self.frames] for t, s in items])
        return codes, self.conditions(items)

    def windows(self, limit: int) -> list[tuple[Track, int]]:
        """Up to ``limit`` non-overlapping windows, spread over the tracks (round robin)."""
        per_track = [list(range(0, t.codes.shape[1] - self.frames + 1, self.frames)) for t in self.tracks]
        out: list[tuple[Track, int]] = []
        for depth in range(max((len(p) for p in per_track), default=0)):
            out += [(t, p[depth]) for t, p in zip(self.tracks, per_track) if depth < len(p)]
        return out[:limit]


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
    audio_text: str = DEFAULT_AUDIO_TEXT,
    midi_text: str = DEFAULT_MIDI_TEXT,
    max_files: int | None = None,
    max_seconds: float | None = None,
    max_val_windows: int = 48,
    seed: int = 0,
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train an audio LM and write ``run_dir/best`` and ``run_dir/last``; returns a summary dict.

    Args:
        codec_path: a codec checkpoint or a codec run folder (``best/`` is used).
        run_dir: output folder.
        audio, midi: ``DIR`` or ``DIR:STYLE`` sources (see the module docstring).
        config: model size (:data:`notewave.audio.lm.CONFIGS`); pattern: codebook pattern.
        segment: training window in seconds; steps, batch_size, lr, eval_every: optimisation.
        text, melody: which conditions the model takes (styles come from the sources).
        cond_dropout, all_dropout: condition dropout probabilities; chroma_downsample: frames per
            melody position.
        max_files: at most this many training files per source; max_seconds: per file.

    Raises:
        DataError: missing/empty data or no track as long as ``segment``.
        CheckpointError: an unusable codec, or a run to resume that does not match.
    """
    from notewave.audio.codec import Codec

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
        model = AudioLM.from_pretrained(run / "last", codec=codec)
    else:
        cond_cfg = ConditionConfig(
            styles, text=text, melody=melody, chroma_downsample=chroma_downsample, dropout=cond_dropout,
            all_dropout=all_dropout,
        )  # fmt: skip
        model = AudioLM(config_for(config, codec, pattern, segment, cond_cfg, **(overrides or {})), codec)
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
        save_every=eval_every, seed=seed,
    )  # fmt: skip
    trainer = Trainer(model, cfg, run, batch_fn, loss_fn, eval_fn, save_fn, dist_info)
    if resume:
        trainer.resume()
    train_start = time.perf_counter()
    history = trainer.run()
    summary = {
        "steps": trainer.step,
        "wall_s": round(time.perf_counter() - train_start, 1),
        "prepare_s": round(prep_s, 1),
        "train_tracks": len(train.tracks),
        "train_hours": round(sum(t.codes.shape[1] for t in train.tracks) / codec.frame_rate / 3600, 3),
        "valid_windows": len(windows),
        "best_val_loss": trainer.best if math.isfinite(trainer.best) else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "styles": styles,
        "history": history,
    }
    if dist_info.main:
        (run / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


# ---- CLI ----------------------------------------------------------------------------------------
def _train_cli(args: argparse.Namespace) -> int:
    summary = train_audio_lm(
        args.codec, args.out, audio=args.audio or (), midi=args.midi or (), config=args.config,
        pattern=args.pattern, segment=args.segment, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        eval_every=args.eval_every, resume=args.resume, text=not args.no_text, melody=not args.no_melody,
        cond_dropout=args.cond_dropout, chroma_downsample=args.chroma_downsample, audio_text=args.audio_text,
        midi_text=args.midi_text, max_files=args.max_files, max_seconds=args.max_seconds, seed=args.seed,
    )  # fmt: skip
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    print(f"checkpoints: {Path(args.out) / 'best'} (lowest validation loss), {Path(args.out) / 'last'}")
    return 0


def add_cli(train_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave train audio-lm``."""
    from notewave.audio.patterns import PATTERNS

    p = train_subparsers.add_parser(
        "audio-lm",
        help="train the codec-token language model (melody/text/style conditioned)",
        description="Train an AudioLM on the codes of a frozen codec. Audio and MIDI folders may end in "
        ":STYLE to set their style tag (default: the folder name); MIDI files are rendered with FluidSynth.",
    )
    p.add_argument("--codec", required=True, type=Path, help="codec checkpoint or codec run folder")
    p.add_argument("--audio", action="append", metavar="DIR[:STYLE]", help="audio folder (repeatable)")
    p.add_argument(
        "--midi", action="append", metavar="DIR[:STYLE]", help="MIDI folder, rendered (repeatable)"
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (best/, last/, data cache)")
    p.add_argument("--config", default="small", help="model size: tiny, small, medium, large (default small)")
    p.add_argument("--pattern", default="delay", choices=PATTERNS, help="codebook pattern (default delay)")
    p.add_argument("--segment", type=float, default=5.0, help="training window in seconds (default 5)")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--no-text", action="store_true", help="train without text conditioning")
    p.add_argument("--no-melody", action="store_true", help="train without melody conditioning")
    p.add_argument("--cond-dropout", type=float, default=0.3, help="per-condition dropout (default 0.3)")
    p.add_argument("--chroma-downsample", type=int, default=2, help="codec frames per melody position")
    p.add_argument("--audio-text", default=DEFAULT_AUDIO_TEXT, help="text of audio tracks ({title}, {style})")
    p.add_argument("--midi-text", default=DEFAULT_MIDI_TEXT, help="text of MIDI renders")
    p.add_argument("--max-files", type=int, default=None, help="at most N training files per folder")
    p.add_argument("--max-seconds", type=float, default=None, help="use at most S seconds of each file")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_train_cli)
    return p

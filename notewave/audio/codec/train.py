"""Training data and ``notewave train codec``.

Data: real audio files (anything soundfile reads: WAV, FLAC, OGG, ...) and/or FluidSynth
renders of MIDI files (rendered once, kept in memory), all downmixed to mono and resampled
to the codec's rate, held as int16 in memory, and cut into random crops of ``segment``
seconds. Validation uses held-out *tracks*: every ``holdout_every``-th file of each folder
in sorted path order (for the Wesnoth music: files 4, 9, 14, ... of the 41, i.e.
``defeat``, ``frantic``, ``knolls``, ``northern_mountains``, ``sad``, ``the_city_falls``,
``traveling_minstrels``, ``wanderer``); a MIDI folder with ``train/`` and ``valid/``
subfolders uses those. The list is written to ``RUN_DIR/data_split.json``.

Loss (per batch of crops ``x``, reconstruction ``x_hat``): multi-scale mel L1 + multi-scale
STFT (:mod:`notewave.audio.codec.losses`) + 0.1 * waveform L1 + RVQ commitment loss; with
``adversarial``, also a multi-scale STFT discriminator (hinge loss, own AdamW, stepped
inside the loss function) adding ``generator_hinge + 2 * feature_matching``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from notewave.audio.codec.config import DECODER_FIELDS, DETAIL_FIELDS
from notewave.audio.codec.data import AudioSet, split_folder
from notewave.audio.codec.losses import (
    MultiScaleMelLoss,
    MultiScaleSTFTDiscriminator,
    MultiScaleSTFTLoss,
    discriminator_hinge_loss,
    feature_matching_loss,
    generator_hinge_loss,
    si_sdr_loss,
)
from notewave.audio.codec.metrics import mel_distance, si_sdr
from notewave.audio.codec.model import Codec, CodecConfig
from notewave.core.train import TrainConfig, Trainer, optimizer_tensors, restore_optimizer, setup_distributed
from notewave.errors import ConfigError, DataError

DISCRIMINATOR_FILE = "discriminator.safetensors"
# Named sizes for `--config`: "tiny" for tests, "small" (one residual unit per stage) and "medium"
# (two, dilations 1 and 3: a wider receptive field for about 25 % more CPU time per step) for
# CPU-trained checkpoints, "base" = the CodecConfig defaults.
CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"channels": 4, "dim": 16, "num_codebooks": 2, "codebook_size": 64, "dilations": (1,)},
    "small": {"channels": 16, "dim": 64, "dilations": (1,)},
    "medium": {"channels": 16, "dim": 64, "dilations": (1, 3)},
    "base": {},
}


def config_for(name: str, **overrides: Any) -> CodecConfig:
    """The :class:`CodecConfig` of a named size (:data:`CONFIGS`) with ``overrides`` (None values ignored).

    Raises:
        ConfigError: unknown name or invalid values.
    """
    if name not in CONFIGS:
        raise ConfigError(f"unknown codec config {name!r}; choose one of {sorted(CONFIGS)}")
    return CodecConfig(**{**CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None}})


def grown_codec(init: str | os.PathLike[str], config: CodecConfig, source: Codec | None = None) -> Codec:
    """A :class:`Codec` of ``config`` holding every tensor of the checkpoint ``init`` whose name and
    shape match (encoder, decoder, the first codebooks with their EMA state and ``initialized`` flag).
    A config with another decoder (kind or sizes) than the checkpoint's starts a fresh one, except
    a deeper Fourier decoder of the same width: it keeps the checkpoint's blocks and appends new
    ones whose residual scale is zero, so the grown codec decodes exactly as the checkpoint did
    (zero-initialised residual branches, as in Goyal et al. 2017 and Fixup). A detail stream
    added to a Fourier codec (``detail_codebooks``; :mod:`notewave.audio.codec.detail`), or one of
    other sizes than the checkpoint's or beside a new (not just deeper) decoder, starts fresh; when
    added, the decoder's input weights for its latents start at zero, so again the grown codec
    decodes exactly as the checkpoint did until it trains.
    ``source``: the checkpoint ``init`` already loaded (it is read again when ``None``).

    The sample rate, strides and channel sizes must agree with the checkpoint's; extra codebooks keep
    ``initialized = False`` and are k-means initialised on their first training batch.

    Raises:
        CheckpointError: unreadable checkpoint. ConfigError: a different rate, hop or layout.
    """
    source = source if source is not None else Codec.from_pretrained(init)
    model = Codec(dataclasses.replace(config, dead_code_threshold=source.config.dead_code_threshold))
    own = model.state_dict()
    copied = {k: v for k, v in source.state_dict().items() if k in own and own[k].shape == v.shape}
    # another decoder kind or size (e.g. a fourier decoder for a SEANet codec's codes) starts fresh
    deeper = _deeper_fourier(source.config, config)
    new_decoder = any(getattr(config, k) != getattr(source.config, k) for k in DECODER_FIELDS)
    fresh = (
        (
            "quantizer.",
            *(f"decoder.blocks.{i}." for i in range(source.config.decoder_layers, config.decoder_layers)),
        )
        if deeper
        else ("quantizer.", "decoder.")
        if new_decoder
        else ("quantizer.",)
    )
    same_detail = all(getattr(config, k) == getattr(source.config, k) for k in DETAIL_FIELDS)
    if config.detail_codebooks and ((new_decoder and not deeper) or not same_detail):  # starts fresh
        fresh += ("detail.",)
        copied = {k: v for k, v in copied.items() if not k.startswith("detail.")}
    if config.detail_codebooks and not source.config.detail_codebooks:  # added: zero input weights
        embed, old = own.get("decoder.embed.weight"), source.state_dict().get("decoder.embed.weight")
        if not new_decoder and embed is not None and old is not None and embed.shape[1] > old.shape[1]:
            copied["decoder.embed.weight"] = torch.cat(
                [old, embed.new_zeros(*old.shape[:1], embed.shape[1] - old.shape[1], *old.shape[2:])], 1
            )
    missing = [k for k in own if k not in copied and not k.startswith(fresh)]
    if missing or source.config.hop_length != model.config.hop_length:
        raise ConfigError(f"--init {init} does not fit config {config.to_dict()}: {missing[:3]}")
    model.load_state_dict({**own, **copied})
    if deeper:
        with torch.no_grad():
            for block in list(model.decoder.blocks)[source.config.decoder_layers :]:
                block.scale.zero_()
    return model


def _deeper_fourier(old: CodecConfig, new: CodecConfig) -> bool:
    """Whether ``new`` only adds ConvNeXt blocks to ``old``'s Fourier decoder."""
    same = all(getattr(old, k) == getattr(new, k) for k in DECODER_FIELDS if k != "decoder_layers")
    return same and old.decoder == "fourier" and new.decoder_layers > old.decoder_layers


def _from_init(init: str | os.PathLike[str], name: str, overrides: dict[str, Any], freeze: bool) -> Codec:
    """The :func:`grown_codec` a run starts from. Decoder fields not given keep ``init``'s; with
    ``freeze`` every other field is ``init``'s too, and the codes must come out exactly as its own.

    Raises:
        ConfigError: with ``freeze``, other code-shaping sizes than ``init``'s, or codes that differ.
    """
    source = Codec.from_pretrained(init)
    given = {k: v for k, v in overrides.items() if v is not None}
    decoder = {k: given.get(k, getattr(source.config, k)) for k in DECODER_FIELDS + DETAIL_FIELDS}
    if not freeze:
        return grown_codec(init, config_for(name, **{**given, **decoder}), source)
    other = {k: v for k, v in given.items() if k not in decoder and v != getattr(source.config, k)}
    if other:
        raise ConfigError(f"freeze_codes keeps --init {init}'s codes; it cannot change {sorted(other)}")
    model = grown_codec(init, dataclasses.replace(source.config, **decoder), source)
    if model.fingerprint()["codes_hash"] != source.fingerprint()["codes_hash"]:
        raise ConfigError(f"freeze_codes: the codes of --init {init} did not survive loading")
    return model


# ---- training -------------------------------------------------------------------------
def train_codec(
    run_dir: str | os.PathLike[str],
    audio_dirs: Sequence[str | os.PathLike[str]] = (),
    midi_dirs: Sequence[str | os.PathLike[str]] = (),
    config: str = "small",
    steps: int = 2000,
    segment: float = 1.0,
    batch_size: int = 8,
    lr: float = 1e-3,
    adversarial: bool = False,
    adversarial_every: int = 1,
    disc_filters: int = 32,
    resume: bool = False,
    init: str | os.PathLike[str] | None = None,
    eval_every: int = 250,
    holdout_every: int = 5,
    val_clips: int = 2,
    val_seconds: float = 2.0,
    max_val_clips: int = 48,
    max_seconds: float | None = None,
    soundfont: str | None = None,
    seed: int = 0,
    precision: str = "auto",
    overrides: dict[str, Any] | None = None,
    si_sdr_weight: float = 0.0,
    freeze_codes: bool = False,
) -> dict[str, Any]:
    """Train a :class:`Codec`, writing ``run_dir/best`` (lowest validation mel distance) and ``run_dir/last``.

    Args:
        audio_dirs, midi_dirs: folders of audio files / MIDI files (rendered with FluidSynth).
        config: size name (:data:`CONFIGS`); ``overrides`` change single fields.
        steps, batch_size, lr: optimisation (AdamW, betas 0.5/0.9, warmup + cosine; batch per process).
        segment: crop length in seconds.
        precision: ``auto`` (bf16 autocast only where the device runs bf16 natively), ``fp32`` or
            ``bf16`` (falls back to fp32 with a warning where not native); see :mod:`notewave.core.precision`.
        adversarial: add the MS-STFT discriminator (slow on a CPU).
        adversarial_every: step the discriminator and add the adversarial and feature-matching
            terms on every n-th step only (1: every step; CPU runs use 2-4).
        disc_filters: convolution channels of each STFT critic (32 as in EnCodec; 16 is ~4x cheaper).
        resume: continue from ``run_dir/last`` (model, optimizer, RNG, discriminator).
        init: start a new run from the weights of this codec checkpoint; tensors of the same name
            and shape are copied, the rest keep their fresh initialisation (for example a 4-codebook
            codec grown to 8 codebooks: codebooks 5-8 are k-means initialised on the first batch).
        holdout_every: every n-th file of a folder is held out for validation.
        val_clips, val_seconds, max_val_clips: clips per held-out track, their length (s), and
            the most clips kept (evenly thinned).
        max_seconds: read at most this many seconds of each audio file.
        si_sdr_weight: weight of the waveform term :func:`~notewave.audio.codec.losses.si_sdr_loss`
            (minus the SI-SDR in dB) beside the spectral ones (0: off, the default).
        freeze_codes: train the decoder alone (:meth:`Codec.freeze_codes`): the encoder and RVQ of
            ``init`` (or of the resumed run) stay as they are, and so do their codes (an audio LM
            trained on them still reads them). Needs ``init`` or ``resume``.

    Returns:
        Summary: steps, wall time (s), hours of audio, best validation mel distance, parameters.

    Raises:
        DataError: no data folders or files; AudioError/MidiError/RenderError for bad inputs.
    """
    if not audio_dirs and not midi_dirs:
        raise DataError("give at least one --audio or --midi folder")
    torch.manual_seed(seed)
    dist_info = setup_distributed()
    run = Path(run_dir)
    if adversarial_every < 1 or disc_filters < 1:
        raise ConfigError("adversarial_every and disc_filters must be >= 1")
    if not 0.0 <= si_sdr_weight <= 10.0:
        raise ConfigError(f"si_sdr_weight must be in 0..10, got {si_sdr_weight}")
    if freeze_codes and not (init or resume):
        raise ConfigError("freeze_codes trains a decoder on a trained codec's codes: give init (or resume)")
    model = Codec.from_pretrained(run / "last") if resume else None
    if model is not None:  # a frozen run resumes frozen (its optimizer holds the decoder alone)
        frozen = bool(model.checkpoint_config.get("codes_frozen"))
        if freeze_codes and not frozen:
            raise ConfigError(f"the run {run} trains its encoder too; freeze_codes cannot start on resume")
        freeze_codes = frozen
    if model is None and init is not None:  # before the (slow) data loading: a bad --init fails at once
        model = _from_init(init, config, overrides or {}, freeze_codes)
    sample_rate = model.sample_rate if model else config_for(config, **(overrides or {})).sample_rate
    progress = dist_info.main
    train_set, valid_set = AudioSet([], [], sample_rate), AudioSet([], [], sample_rate)
    sources = [(folder, False) for folder in audio_dirs] + [(folder, True) for folder in midi_dirs]
    clip_sets = []
    for folder, midi in sources:
        for files, target in zip(split_folder(folder, midi, holdout_every), (train_set, valid_set)):
            if not files:
                continue
            if midi:
                part = AudioSet.from_midi(files, sample_rate, soundfont, progress)
            else:
                part = AudioSet.from_files(files, sample_rate, max_seconds, progress)
            target.extend(part)
            if target is valid_set:  # each folder gives at most max_val_clips / folders clips, evenly thinned
                folder_clips = part.eval_clips(val_seconds, val_clips)
                clip_sets.append(
                    folder_clips[:: max(1, math.ceil(len(folder_clips) * len(sources) / max_val_clips))]
                )
    clips = torch.cat(clip_sets) if clip_sets else torch.zeros(0, 1, 1)
    length = int(round(segment * sample_rate))
    if model is None:  # restart codes used < 1/20 as often as the average one (at most 2 times per batch)
        base = config_for(config, **(overrides or {}))
        frames = batch_size * max(1, length // base.hop_length)
        auto = {"dead_code_threshold": round(min(2.0, 0.05 * frames / base.codebook_size), 4)}
        model = Codec(config_for(config, **{**auto, **(overrides or {})}))
    if freeze_codes:
        model.freeze_codes()
    mel_loss, stft_loss = MultiScaleMelLoss(sample_rate), MultiScaleSTFTLoss()
    disc = MultiScaleSTFTDiscriminator(filters=disc_filters) if adversarial else None
    calls = [0]
    d_opt = torch.optim.AdamW(disc.parameters(), lr=lr, betas=(0.5, 0.9)) if disc else None
    if disc is not None and resume and (run / "last" / DISCRIMINATOR_FILE).is_file():
        from safetensors.torch import load_file

        saved = load_file(str(run / "last" / DISCRIMINATOR_FILE))
        disc.load_state_dict({k[5:]: v for k, v in saved.items() if k.startswith("disc.")})
        meta = json.loads((run / "last" / "discriminator.json").read_text(encoding="utf-8"))
        restore_optimizer(d_opt, {k[4:]: v for k, v in saved.items() if k.startswith("opt.")}, meta)
    running: dict[str, float] = {}

    def batch_fn(generator: torch.Generator) -> torch.Tensor:
        return train_set.sample_batch(batch_size, length, generator).to(dist_info.device)

    def loss_fn(forward: Any, x: torch.Tensor) -> torch.Tensor:
        out = forward(x)
        parts = {"mel": mel_loss(out.audio, x), "stft": stft_loss(out.audio, x)}
        parts["l1"] = F.l1_loss(out.audio, x)
        parts["commit"] = out.commit_loss
        loss = parts["mel"] + parts["stft"] + 0.1 * parts["l1"] + parts["commit"]
        if si_sdr_weight:
            parts["neg_si_sdr"] = si_sdr_loss(out.audio, x)
            loss = loss + si_sdr_weight * parts["neg_si_sdr"]
        calls[0] += 1
        if disc is not None and (calls[0] - 1) % adversarial_every == 0:
            real_logits, real_feats = disc(x)
            d_loss = discriminator_hinge_loss(real_logits, disc(out.audio.detach())[0])
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            disc.requires_grad_(False)
            fake_logits, fake_feats = disc(out.audio)
            disc.requires_grad_(True)
            parts["adv"], parts["feat"] = (
                generator_hinge_loss(fake_logits),
                feature_matching_loss(real_feats, fake_feats),
            )
            parts["disc"] = d_loss
            loss = loss + parts["adv"] + 2 * parts["feat"]
        for key, value in parts.items():
            running[key] = running.get(key, 0.0) + float(value.detach())
        running["n"] = running.get("n", 0.0) + 1
        return loss

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        record = {
            f"train_{k}": round(v / running["n"], 4) for k, v in running.items() if k != "n" and running["n"]
        }
        running.clear()
        if not len(clips):
            return record
        main_k = m.config.num_codebooks  # with a detail stream: also the main codebooks alone
        # encode once, in float32 as users' encode gives the codes: the RVQ's first k codes are those
        # of an n_q=k encode, so each codebook count decodes a prefix of them
        parts: dict[int, list[torch.Tensor]] = {k: [] for k in (1, main_k, m.num_codebooks)}
        for c in clips.split(8):
            with torch.autocast(dist_info.device.type, enabled=False):
                codes = m.encode(c.to(dist_info.device), chunk_seconds=None)
            for k, chunks in parts.items():
                chunks.append(m.decode(codes[:, :k], chunk_seconds=None)[..., : c.shape[-1]].cpu())
        recon = {k: torch.cat(v) for k, v in parts.items()}
        record["val_loss"] = mel_distance(clips, recon[m.num_codebooks], sample_rate)
        record["val_mel_1codebook"] = round(mel_distance(clips, recon[1], sample_rate), 4)
        if main_k != m.num_codebooks:
            record[f"val_mel_{main_k}codebooks"] = round(mel_distance(clips, recon[main_k], sample_rate), 4)
        record["val_si_sdr"] = round(si_sdr(clips, recon[m.num_codebooks]), 2)
        return record

    def save_fn(m: torch.nn.Module, folder: Path, extra: Any, info: dict[str, Any]) -> None:
        def files(tmp: Path) -> None:
            extra(tmp)
            if disc is not None:
                from safetensors.torch import save_file

                tensors, meta = optimizer_tensors(d_opt)
                state = {f"disc.{k}": v for k, v in disc.state_dict().items()} | {
                    f"opt.{k}": v for k, v in tensors.items()
                }
                save_file({k: v.contiguous().cpu() for k, v in state.items()}, str(tmp / DISCRIMINATOR_FILE))
                (tmp / "discriminator.json").write_text(json.dumps(meta), encoding="utf-8")

        settings = {"training": info, "codes_frozen": freeze_codes}
        m.save_pretrained(folder, extra_config=settings, extra_files=files)

    cfg = TrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, warmup=min(100, steps // 10), weight_decay=0.0,
        beta1=0.5, beta2=0.9, grad_clip=10.0, eval_every=eval_every, save_every=eval_every, seed=seed,
        precision=precision,
    )  # fmt: skip
    trainer = Trainer(model, cfg, run, batch_fn, loss_fn, eval_fn, save_fn, dist_info)
    if disc is not None:
        disc.to(dist_info.device)
    split = {
        "holdout_every": holdout_every,
        "train": train_set.names,
        "valid": valid_set.names,
        "train_hours": round(train_set.seconds / 3600, 3),
        "valid_clips": int(len(clips)),
    }
    if dist_info.main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "data_split.json").write_text(json.dumps(split, indent=2), encoding="utf-8")
    result = trainer.fit(resume)
    summary = {
        "steps": result["steps"],
        "wall_s": result["wall_s"],
        "precision": result["precision"],
        "train_hours": split["train_hours"],
        "train_files": len(train_set.names),
        "valid_files": len(valid_set.names),
        "best_val_mel": result["best_val_loss"],
        "init": str(init) if init is not None else None,
        "si_sdr_weight": si_sdr_weight,
        "freeze_codes": freeze_codes,
        "codes_hash": model.fingerprint()["codes_hash"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "trained_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "config": model.config.to_dict(),
        "history": result["history"],
    }
    if dist_info.main:
        (run / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary

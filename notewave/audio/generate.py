"""Generation with the audio LM: KV-cache decoding, classifier-free guidance, prompts, sliding windows.

* **Decoding**: the conditions prefix and every step up to the first code to sample are fed in
  one forward pass (prefill); then one step at a time with the transformer's KV cache. At each
  step the codebooks the pattern places there are sampled (temperature, top-k, top-p; the
  special token has no logit, so it is never sampled) and the others are kept.
* **Classifier-free guidance** (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance"; for
  music LMs Copet et al. 2023, MusicGen): the conditional and the unconditional batch (all
  conditions null) run in one forward pass of batch 2B; the logits are
  ``uncond + cfg_coef * (cond - uncond)``. ``cfg_coef = 1`` is plain conditional sampling (then
  the unconditional half is skipped).
* **Audio prompt**: its codes are the first frames of the output; the pattern positions they
  fill are kept, the rest are sampled (AudioLM-style continuation, Borsos et al. 2023).
* **Long outputs**: beyond the model window (``max_frames``) a window slides forward by
  ``max_frames - keep`` frames, re-prompting each time with the last ``keep`` generated frames
  (default half a window) and the matching slice of the melody.
* **Melody timing**: chroma frame ``i`` conditions output frame ``i`` (prompt included). A melody
  longer than the requested duration is trimmed with a ``UserWarning``; a shorter one is followed
  by silence (no constraint).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from notewave.audio.conditioning import Conditions, build_conditions
from notewave.audio.melody import MelodyLike, melody_chroma
from notewave.core.sampling import check_sampling_args, sample
from notewave.errors import CheckpointError, ConditioningError, ConfigError
from notewave.paths import DATA_DIR, PROJECT_ROOT

DEFAULT_CODEC_DIR = DATA_DIR / "checkpoints" / "codec"


def guided_logits(cond: torch.Tensor, uncond: torch.Tensor, cfg_coef: float) -> torch.Tensor:
    """Classifier-free guidance: ``uncond + cfg_coef * (cond - uncond)`` (any matching shapes).

    ``cfg_coef == 1`` returns ``cond`` itself (exactly, without rounding).
    """
    return cond if cfg_coef == 1.0 else uncond + cfg_coef * (cond - uncond)


def cfg_forward(
    model: Any,
    tokens: torch.Tensor,
    conditions: Conditions | None,
    cache: Any,
    cfg_coef: float,
    frames: int | None = None,
) -> torch.Tensor:
    """Guided logits ``[B, K, S, N]`` for tokens ``[B, K, S]``; cond and uncond batched as 2B rows.

    ``conditions`` (B items, or ``None`` after the first call) are doubled with their null copy;
    ``cache`` must then have 2B rows. With ``cfg_coef == 1`` the batch (and cache) has B rows.
    """
    if cfg_coef == 1.0:
        return model(tokens, conditions, cache, frames)
    both = None if conditions is None else conditions.cat(conditions.null())
    logits = model(torch.cat([tokens, tokens]), both, cache, frames)
    cond, uncond = logits.chunk(2)
    return guided_logits(cond, uncond, cfg_coef)


@torch.no_grad()
def generate_window(
    model: Any,
    conditions: Conditions,
    frames: int,
    prompt: torch.Tensor | None = None,
    cfg_coef: float = 3.0,
    temperature: float = 1.0,
    top_k: int | None = 250,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Codes int64 ``[B, K, frames]`` (``frames <= model.max_frames``) for one window.

    Args:
        conditions: B items, melody of ``frames`` frames (padded inside to the window).
        prompt: int64 ``[B, K, P]`` codes of the first ``P < frames`` frames, kept as they are.
        generator: the random generator of the draws.
    """
    pattern, special = model.pattern, model.special
    batch, k = conditions.batch_size, model.num_codebooks
    device = next(model.parameters()).device
    layout = pattern.step_positions(frames).to(device)  # [K, S] frame at (k, s) or -1
    steps = layout.shape[1]
    known = 0 if prompt is None else prompt.shape[2]
    seq = torch.full((batch, k, steps), special, dtype=torch.long, device=device)
    if known:
        fixed = (layout >= 0) & (layout < known)
        index = layout.clamp(0, known - 1).unsqueeze(0).expand(batch, -1, -1)
        seq = torch.where(fixed, prompt.to(device).gather(2, index), seq)
    todo = layout >= known  # [K, S] positions to sample
    first = int(torch.nonzero(todo.any(0))[0, 0])
    rows = batch if cfg_coef == 1.0 else 2 * batch
    cache = model.new_cache(rows)
    inputs = model.input_tokens(seq)
    cond = conditions.to(device)
    logits = cfg_forward(model, inputs[:, :, : first + 1], cond, cache, cfg_coef, frames)[:, :, -1]
    bar = tqdm(total=steps - first, desc="generate", unit="step", disable=not progress, leave=False)
    for step in range(first, steps):
        if step > first:
            logits = cfg_forward(model, seq[:, :, step - 1 : step], None, cache, cfg_coef, frames)[:, :, -1]
        drawn = sample(logits.reshape(batch * k, -1), temperature, top_k, top_p, generator=generator).view(
            batch, k
        )
        seq[:, :, step] = torch.where(todo[:, step], drawn, seq[:, :, step])
        bar.update(1)
    bar.close()
    return pattern.revert(seq, frames)


@torch.no_grad()
def generate_codes(
    model: Any,
    conditions: Conditions,
    frames: int,
    prompt: torch.Tensor | None = None,
    keep: int | None = None,
    progress: bool = False,
    **sampling: Any,
) -> torch.Tensor:
    """Codes int64 ``[B, K, frames]`` of any length: one window, or a sliding window past ``max_frames``.

    Args:
        conditions: B items with a melody of ``frames`` frames (the whole output's timeline).
        frames: output frames (prompt included).
        prompt: int64 ``[B, K, P]`` first frames, ``P < frames``.
        keep: frames of context kept when the window slides (default ``max_frames // 2``).
        sampling: ``cfg_coef``, ``temperature``, ``top_k``, ``top_p``, ``generator`` of
            :func:`generate_window`.

    Raises:
        ConfigError: ``frames < 1``, a prompt as long as the output, or ``keep`` outside
            ``[1, max_frames)``.
    """
    window = model.max_frames
    keep = window // 2 if keep is None else int(keep)
    if frames < 1:
        raise ConfigError(f"need at least one frame to generate, got {frames}")
    if window > 1 and not 1 <= keep < window:
        raise ConfigError(f"keep must be in [1, {window}) frames, got {keep}")
    keep = min(keep, window - 1)
    empty = torch.zeros(conditions.batch_size, model.num_codebooks, 0, dtype=torch.long)
    codes = empty if prompt is None else model.check_codes(prompt, "prompt codes")
    done = codes.shape[2]
    if done >= frames:
        raise ConfigError(f"the prompt ({done} frames) is not shorter than the output ({frames} frames)")
    total_windows = 1 if frames <= window else 1 + math.ceil((frames - window) / max(1, window - keep))
    bar = tqdm(total=frames, initial=done, desc="generate", unit="frame", disable=not progress)
    while done < frames:
        start = 0 if done < window else done - keep
        end = min(frames, start + window)
        context = codes[:, :, start:done] if done > start else None
        out = generate_window(
            model, conditions.frames_slice(start, end), end - start, context,
            progress=progress and total_windows == 1, **sampling,
        )  # fmt: skip
        codes = torch.cat([codes[:, :, :done].to(out.device), out[:, :, done - start :]], dim=2)
        bar.update(end - done)
        done = end
    bar.close()
    return codes


def generate_audio(
    model: Any,
    melody: MelodyLike | None = None,
    text: str | None = None,
    style: str | None = None,
    seconds: float = 5.0,
    prompt_audio: Any = None,
    cfg_coef: float = 3.0,
    temperature: float = 1.0,
    top_k: int | None = 250,
    top_p: float | None = None,
    seed: int = 0,
    progress: bool = True,
    keep: int | None = None,
    return_codes: bool = False,
) -> tuple[np.ndarray, int] | tuple[np.ndarray, int, torch.Tensor]:
    """Generate ``seconds`` of audio with an :class:`~notewave.audio.lm.AudioLM` and its codec.

    Args:
        model: the audio LM, with a codec attached.
        melody: melody condition: a MIDI file (``.mid``), an audio file (``.wav``, ...) or a chroma
            ``[12, frames]`` at the codec frame rate; trimmed (``UserWarning``) when longer than
            ``seconds``, followed by silence when shorter.
        text: a description (sentence embedding; the model must take text).
        style: a style tag the model knows.
        seconds: output duration in seconds, prompt included (> 0).
        prompt_audio: a file or float array ``[channels, samples]`` at the codec rate to continue;
            shorter than ``seconds``; it is kept (re-encoded) as the start of the output.
        cfg_coef: classifier-free guidance strength (1: none).
        temperature, top_k, top_p: sampling (see :func:`notewave.core.sampling.sample`).
        seed: random seed; the same seed and inputs give the same audio.
        progress: show a tqdm bar.
        keep: frames of context kept when sliding past the window (default half a window).
        return_codes: also return the codes int64 ``[1, K, T]``.

    Returns:
        ``(wav, sample_rate)``: float32 ``[1, round(seconds * sample_rate)]`` in [-1, 1] and the rate
        in Hz (plus the codes with ``return_codes``).

    Raises:
        CheckpointError: no codec attached.
        ConditioningError: unknown style, unreadable melody, bad chroma, text model missing, or a
            prompt not shorter than ``seconds``.
        ConfigError: bad sampling arguments or duration.
        AudioError: an unreadable prompt.
    """
    codec = model.codec
    if codec is None:
        raise CheckpointError(
            "the audio LM has no codec to decode with; load it with AudioLM.from_pretrained(..., codec=...) "
            "or put the codec checkpoint at data/checkpoints/codec"
        )
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"seconds must be a positive number, got {seconds!r}")
    if not (isinstance(cfg_coef, int | float) and math.isfinite(cfg_coef)):
        raise ConfigError(f"cfg_coef must be a finite number, got {cfg_coef!r}")
    check_sampling_args(temperature, top_k, top_p)
    samples = round(seconds * model.sample_rate)
    frames = max(1, -(-samples // codec.hop_length))
    chroma = None if melody is None else melody_chroma(melody, model.sample_rate, model.frame_rate)
    conditions = build_conditions(model.config.conditions, frames, chroma, text, style)
    prompt = None
    if prompt_audio is not None:
        from notewave.audio.codec import encode_audio

        rate = model.sample_rate if isinstance(prompt_audio, np.ndarray) else None
        prompt = model.check_codes(encode_audio(codec, prompt_audio, sample_rate=rate), "prompt codes")
        if prompt.shape[2] >= frames:
            raise ConditioningError(
                f"the audio prompt ({prompt.shape[2] / model.frame_rate:.2f} s) must be shorter than the "
                f"requested {seconds} s, which include the prompt"
            )
    generator = torch.Generator(next(model.parameters()).device).manual_seed(int(seed))
    was_training = model.training
    model.eval()
    try:
        codes = generate_codes(
            model, conditions, frames, prompt, keep=keep, progress=progress, cfg_coef=float(cfg_coef),
            temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
        )  # fmt: skip
    finally:
        model.train(was_training)
    wav = codec.decode(codes.to(next(codec.parameters()).device))[0, :, :samples]
    out = np.ascontiguousarray(wav.float().cpu().numpy(), dtype=np.float32)
    return (out, model.sample_rate, codes) if return_codes else (out, model.sample_rate)


# ---- codec lookup --------------------------------------------------------------------------------
def codec_identity(codec: Any) -> dict[str, Any]:
    """What identifies a codec's codes: its config, config hash and weights hash."""
    return {"config": codec.config.to_dict(), **codec.fingerprint()}


def check_codec(config: Any, codec: Any) -> dict[str, Any]:
    """Check that ``codec`` is the one an :class:`~notewave.audio.lm.AudioLMConfig` was trained on.

    Returns:
        The recorded identity (``config.codec``), or the codec's own when none was recorded.

    Raises:
        CheckpointError: another K, N or rate, or another codec (config or weights hash).
    """
    want, got = config.codec, codec_identity(codec)
    sizes = (codec.num_codebooks, codec.codebook_size, int(codec.sample_rate), float(codec.frame_rate))
    expect = (config.num_codebooks, config.codebook_size, config.sample_rate, config.frame_rate)
    if sizes != expect:
        raise CheckpointError(
            f"the codec gives (K, N, sample_rate, frame_rate) = {sizes} but the audio LM was trained "
            f"on {expect}; use the codec the LM was trained with"
        )
    for key in ("config_hash", "weights_hash"):
        if want.get(key) and want[key] != got[key]:
            raise CheckpointError(
                f"the audio LM was trained on the codes of another codec ({key} {want[key]}, given "
                f"{got[key]}); load it with the codec it was trained with"
            )
    return want or got


def codec_candidates(path: str | os.PathLike[str], identity: dict[str, Any]) -> list[Path]:
    """Folders where the codec of the audio LM at ``path`` may be, in order of preference."""
    out = [Path(path) / "codec"]
    if identity.get("path"):
        recorded = Path(identity["path"])
        out.append(recorded if recorded.is_absolute() else PROJECT_ROOT / recorded)
    out.append(DEFAULT_CODEC_DIR)
    return out


def load_codec_for(path: str | os.PathLike[str], identity: dict[str, Any]) -> Any:
    """The first existing codec of :func:`codec_candidates`, or ``None`` when there is none."""
    from notewave.audio.codec import Codec

    for folder in codec_candidates(path, identity):
        if (folder / "config.json").is_file():
            return Codec.from_pretrained(folder)
    return None


# ---- CLI ----------------------------------------------------------------------------------------
def _generate_cli(args: argparse.Namespace) -> int:
    from notewave.audio.lm import AudioLM
    from notewave.bridge.render import write_wav

    model = AudioLM.from_pretrained(args.checkpoint)
    if model.codec is None:
        raise CheckpointError(f"no codec found for {args.checkpoint}; expected data/checkpoints/codec")
    wav, rate = generate_audio(
        model, melody=args.melody, text=args.text, style=args.style, seconds=args.seconds,
        prompt_audio=args.prompt_audio, cfg_coef=args.cfg_coef, temperature=args.temperature,
        top_k=args.top_k or None, top_p=args.top_p, seed=args.seed, progress=True,
    )  # fmt: skip
    write_wav(args.out, wav, rate)
    print(f"WAV: {args.out} ({wav.shape[-1] / rate:.2f} s at {rate} Hz)")
    return 0


def add_generate_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave generate-audio``."""
    from notewave.audio.lm import DEFAULT_AUDIO_CHECKPOINT

    p = subparsers.add_parser(
        "generate-audio",
        help="generate audio from a melody sketch, text and style with the audio LM",
        description="Generate audio with the codec language model, conditioned on a melody "
        "(MIDI or audio sketch), a text description and a style tag, optionally continuing an audio prompt.",
    )
    p.add_argument("--melody", type=Path, default=None, help="melody sketch: .mid or audio file (.wav, ...)")
    p.add_argument("--text", default=None, help='text description, e.g. "Bach chorale, church organ"')
    p.add_argument("--style", default=None, help="style tag the model was trained with")
    p.add_argument(
        "--prompt-audio", type=Path, default=None, help="audio file to continue (kept at the start)"
    )
    p.add_argument(
        "--seconds", type=float, required=True, help="output duration in seconds (prompt included)"
    )
    p.add_argument("--out", type=Path, required=True, help="output WAV file")
    p.add_argument(
        "--cfg-coef", type=float, default=3.0, help="classifier-free guidance (default 3; 1 = off)"
    )
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=250, help="top-k sampling (0: off; default 250)")
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_AUDIO_CHECKPOINT, help="audio LM folder")
    p.set_defaults(func=_generate_cli)
    return p

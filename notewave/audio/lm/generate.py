"""Generation with the audio LM: KV-cache decoding, classifier-free guidance, prompts, sliding windows.

* **Decoding**: the conditions prefix and every step up to the first code to sample are fed in
  one forward pass (prefill); then one step at a time with the transformer's KV cache (through
  :mod:`notewave.audio.lm.step`: the same logits as the model's forward, in fewer calls), all on
  one torch thread (the operations are too small to split between threads). At each
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

import contextlib
import math
from typing import Any

import torch
from tqdm import tqdm

from notewave.audio.lm.conditioning import Conditions
from notewave.audio.lm.step import DecodeStep, one_thread
from notewave.core.sampling import sample
from notewave.errors import ConfigError


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
    melody: torch.Tensor | None = None,
) -> torch.Tensor:
    """Guided logits ``[B, K, S, N]`` for tokens ``[B, K, S]``; cond and uncond batched as 2B rows.

    ``conditions`` (B items, or ``None`` after the first call) are doubled with their null copy;
    ``cache`` must then have 2B rows. With ``cfg_coef == 1`` the batch (and cache) has B rows.
    ``melody``: a summed-melody model's :meth:`~notewave.audio.lm.model.AudioLM.melody_steps` of
    :func:`guidance_rows` (one row per cache row).
    """
    if cfg_coef == 1.0:
        return model(tokens, conditions, cache, frames, melody)
    both = None if conditions is None else guidance_rows(conditions, cfg_coef)
    logits = model(torch.cat([tokens, tokens]), both, cache, frames, melody)
    cond, uncond = logits.chunk(2)
    return guided_logits(cond, uncond, cfg_coef)


def guidance_rows(conditions: Conditions, cfg_coef: float) -> Conditions:
    """The rows the model runs for guidance ``cfg_coef``: the B items, then (``cfg_coef != 1``) their
    null copies."""
    return conditions if cfg_coef == 1.0 else conditions.cat(conditions.null())


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
    lean: bool = True,
) -> torch.Tensor:
    """Codes int64 ``[B, K, frames]`` (``frames <= model.max_frames``) for one window.

    Args:
        conditions: B items, melody of ``frames`` frames (padded inside to the window).
        prompt: int64 ``[B, K, P]`` codes of the first ``P < frames`` frames, kept as they are.
        generator: the random generator of the draws.
        lean: on one torch thread (:func:`~notewave.audio.lm.step.one_thread`), decode the steps after
            the prefill with :class:`~notewave.audio.lm.step.DecodeStep` (eval mode only; the same
            logits as ``model.forward``, faster); ``False``: ``model.forward`` per step, on the
            process's threads.
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
    lean = lean and not model.training and hasattr(model, "heads")
    with one_thread() if lean else contextlib.nullcontext():
        cache = model.new_cache(rows)
        inputs = model.input_tokens(seq)
        conditions = conditions.to(device)
        melody = model.melody_steps(guidance_rows(conditions, cfg_coef), frames)
        logits = cfg_forward(model, inputs[:, :, : first + 1], conditions, cache, cfg_coef, frames, melody)
        logits = logits[:, :, -1]
        decode = DecodeStep(model, frames, melody) if lean else None
        bar = tqdm(total=steps - first, desc="generate", unit="step", disable=not progress, leave=False)
        for step in range(first, steps):
            if step > first:
                tokens = seq[:, :, step - 1 : step]
                if decode is None:
                    logits = cfg_forward(model, tokens, None, cache, cfg_coef, frames, melody)[:, :, -1]
                elif cfg_coef == 1.0:
                    logits = decode(tokens, cache, step)[:, :, -1]
                else:
                    both = decode(torch.cat([tokens, tokens]), cache, step)[:, :, -1]
                    logits = guided_logits(*both.chunk(2), cfg_coef)
            drawn = sample(logits.reshape(batch * k, -1), temperature, top_k, top_p, generator=generator)
            seq[:, :, step] = torch.where(todo[:, step], drawn.view(batch, k), seq[:, :, step])
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
        sampling: ``cfg_coef``, ``temperature``, ``top_k``, ``top_p``, ``generator``, ``lean`` of
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

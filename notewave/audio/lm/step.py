"""One decoding step of the audio LM with its KV cache, in fewer Python calls (for generation).

A :class:`DecodeStep` gives exactly the numbers of ``AudioLM.forward(tokens, None, cache, frames)``
for one step after the cache has been filled: the codebook embeddings summed in codebook order,
the frame-time embedding, then the transformer through :class:`notewave.core.decode_step.BlockStep`
(the same operations as ``forward`` without the module calls), then the K heads; the pattern
layout and time embeddings are built once per window, not per step. Module calls and per-step
rebuilding were about a fifth of the CPU time of a step of the shipped model (d_model 128,
4 layers, K = 4) on the 2-core test machine. For a model in eval mode only (dropout off);
:func:`notewave.audio.lm.generate.generate_window` falls back to ``forward`` otherwise.
``tests/audio/test_lm_speed_equivalence.py`` checks the equality.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from notewave.core.decode_step import BlockStep, one_thread

if TYPE_CHECKING:
    from notewave.audio.lm.model import AudioLM
    from notewave.core.transformer import KVCache

__all__ = ["DecodeStep", "one_thread"]


class DecodeStep:
    """``step(tokens, cache, s)``: next-step logits of ``model`` for step ``s`` of a ``frames``-frame window.

    Args:
        model: an :class:`~notewave.audio.lm.model.AudioLM` in eval mode (its weight tensors are
            taken here: in-place changes show, replaced tensors need a new ``DecodeStep``).
        frames: the window's frames (as passed to ``forward``), which fix the time embedding of each step.
        melody: a summed-melody model's ``melody_steps`` of the window for the cache's rows, float
            ``[B, S, d_model]`` (``None`` otherwise).
    """

    def __init__(self, model: AudioLM, frames: int, melody: torch.Tensor | None = None):
        self.times = model.conditioner.step_time(model.step_frames(frames))  # [S, d_model] or None
        self.melody = melody  # [B, S, d_model] of a summed-melody model, or None
        self.embeddings = [emb.weight for emb in model.emb]
        self.blocks = BlockStep(model.transformer)
        self.heads = [(head.weight, head.bias) for head in model.heads]

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, cache: KVCache, step: int) -> torch.Tensor:
        """Logits float ``[B, K, 1, N]`` for the input tokens int64 ``[B, K, 1]`` of step ``step``.

        ``cache`` holds the B rows' prefix and earlier steps (``forward`` filled it); it advances by one.

        Raises:
            ConfigError: an empty cache (fill it with ``forward``) or a full one.
        """
        x = F.embedding(tokens[:, 0], self.embeddings[0])
        for k in range(1, len(self.embeddings)):
            x = x + F.embedding(tokens[:, k], self.embeddings[k])
        if self.times is not None:
            x = x + self.times[step : step + 1]
        if self.melody is not None:
            x = x + self.melody[:, step : step + 1]
        h = self.blocks(x, cache)
        return torch.stack([F.linear(h, *head) for head in self.heads], dim=1)

"""One decoding step of the audio LM with its KV cache, in fewer Python calls (for generation).

A :class:`DecodeStep` gives exactly the numbers of ``AudioLM.forward(tokens, None, cache, frames)``
for one step after the cache has been filled: the same ATen operations on the same shapes, in
the same order (codebook embeddings summed in codebook order, the frame-time embedding, the
position embedding, the pre-LN blocks of :mod:`notewave.core.transformer` with scaled-dot-product
attention over the cache, the K heads), without the module calls, the dropout no-ops, the
attribute look-ups and the per-step rebuilding of the pattern layout and time embeddings, which
were about a fifth of the CPU time of a step of the shipped model (d_model 128, 4 layers, K = 4)
on the 2-core test machine. Most of the rest is the matrix products themselves: a step reads
every weight once (about 5 MB), more than a core's cache holds. For a model in eval mode only
(dropout off); :func:`notewave.audio.lm.generate.generate_window` falls back to ``forward``
otherwise. ``tests/audio/test_lm_speed_equivalence.py`` checks the equality.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from notewave.errors import ConfigError

if TYPE_CHECKING:
    from notewave.audio.lm.model import AudioLM
    from notewave.core.transformer import KVCache


class DecodeStep:
    """``step(tokens, cache, s)``: next-step logits of ``model`` for step ``s`` of a ``frames``-frame window.

    Args:
        model: an :class:`~notewave.audio.lm.model.AudioLM` in eval mode (its weight tensors are
            taken here: in-place changes show, replaced tensors need a new ``DecodeStep``).
        frames: the window's frames (as passed to ``forward``), which fix the time embedding of each step.
    """

    def __init__(self, model: AudioLM, frames: int):
        transformer = model.transformer
        step_frames = model.pattern.step_positions(frames).max(0).values
        self.times = model.conditioner.step_time(step_frames)  # [S, d_model] or None
        self.embeddings = [emb.weight for emb in model.emb]
        self.positions = transformer.pos_emb.weight
        self.max_len, self.width = transformer.config.max_seq_len, transformer.config.d_model
        self.blocks = [
            (b.attn.n_heads, (b.ln1.weight, b.ln1.bias, b.ln1.eps), (b.attn.qkv.weight, b.attn.qkv.bias),
             (b.attn.proj.weight, b.attn.proj.bias), (b.ln2.weight, b.ln2.bias, b.ln2.eps),
             (b.mlp[0].weight, b.mlp[0].bias), b.mlp[1].approximate, (b.mlp[2].weight, b.mlp[2].bias))
            for b in transformer.blocks
        ]  # fmt: skip
        self.final = (transformer.ln_f.weight, transformer.ln_f.bias, transformer.ln_f.eps)
        self.heads = [(head.weight, head.bias) for head in model.heads]

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, cache: KVCache, step: int) -> torch.Tensor:
        """Logits float ``[B, K, 1, N]`` for the input tokens int64 ``[B, K, 1]`` of step ``step``.

        ``cache`` holds the B rows' prefix and earlier steps (``forward`` filled it); it advances by one.

        Raises:
            ConfigError: an empty cache (fill it with ``forward``) or a full one.
        """
        start, width = cache.length, self.width
        if not 0 < start < self.max_len:
            raise ConfigError(
                f"a decoding step needs a cache holding 1..{self.max_len - 1} positions, not {start}"
            )
        x = F.embedding(tokens[:, 0], self.embeddings[0])
        for k in range(1, len(self.embeddings)):
            x = x + F.embedding(tokens[:, k], self.embeddings[k])
        if self.times is not None:
            x = x + self.times[step : step + 1]
        h = x + self.positions[start]
        batch, steps, _ = h.shape
        for layer, (heads, ln1, qkv, proj, ln2, up, approximate, down) in enumerate(self.blocks):
            q, k, v = F.linear(F.layer_norm(h, (width,), *ln1), *qkv).split(width, dim=2)
            q, k, v = (t.view(batch, steps, heads, -1).transpose(1, 2) for t in (q, k, v))
            keys, values = cache.keys[layer], cache.values[layer]
            keys[:, :, start : start + 1] = k
            values[:, :, start : start + 1] = v
            out = F.scaled_dot_product_attention(q, keys[:, :, : start + 1], values[:, :, : start + 1])
            h = h + F.linear(out.transpose(1, 2).reshape(batch, steps, width), *proj)
            h = h + F.linear(
                F.gelu(F.linear(F.layer_norm(h, (width,), *ln2), *up), approximate=approximate), *down
            )
        cache.length = start + 1
        h = F.layer_norm(h, (width,), *self.final)
        return torch.stack([F.linear(h, *head) for head in self.heads], dim=1)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one torch thread (``torch.set_num_threads(1)``), then restore the count.

    A decoding step is some 140 operations on a few rows (2 x 128 activations against 128 x 1024
    weights at most): too small to split, and each split costs a wake-up and a wait of the second
    thread. With two threads on the 2-core test machine (shared with a training run) 5 s of the
    shipped LM took 1.8-3.5 s instead of 0.6 s on one. The setting is process-wide while it lasts.
    """
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)

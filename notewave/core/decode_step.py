"""One decoding position through a :class:`~notewave.core.transformer.Transformer`, in few Python calls.

:class:`BlockStep` gives exactly the numbers of ``Transformer.forward(x, cache)`` for one new
position after the cache has been filled: the same ATen operations on the same shapes in the same
order (the position embedding, the pre-LN blocks with scaled-dot-product attention over the cache,
the final LayerNorm), without the module calls, the dropout no-ops and the attribute look-ups. On
the 2-core test machine these were a fifth of the CPU time of a step of the shipped audio LM
(d_model 128) and a tenth of the composer's (d_model 384); the rest is the matrix products, which
read every weight once per step. For a model in eval mode only (dropout off). The audio LM
(:mod:`notewave.audio.lm.step`) and the composer (:class:`notewave.symbolic.decode.Decoder`) build
their embeddings and heads around it; ``tests/audio/test_lm_speed_equivalence.py`` and
``tests/symbolic/test_cursor.py`` check the equality.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from notewave.core.transformer import KVCache, Transformer
from notewave.errors import ConfigError


class BlockStep:
    """``step(x, cache)``: the hidden state of one new position of ``transformer``.

    Args:
        transformer: the model's transformer in eval mode (its weight tensors are taken here:
            in-place changes show, replaced tensors need a new ``BlockStep``).
    """

    def __init__(self, transformer: Transformer):
        self.positions = transformer.pos_emb.weight
        self.max_len, self.width = transformer.config.max_seq_len, transformer.config.d_model
        self.blocks = [
            (b.attn.n_heads, (b.ln1.weight, b.ln1.bias, b.ln1.eps), (b.attn.qkv.weight, b.attn.qkv.bias),
             (b.attn.proj.weight, b.attn.proj.bias), (b.ln2.weight, b.ln2.bias, b.ln2.eps),
             (b.mlp[0].weight, b.mlp[0].bias), b.mlp[1].approximate, (b.mlp[2].weight, b.mlp[2].bias))
            for b in transformer.blocks
        ]  # fmt: skip
        self.final = (transformer.ln_f.weight, transformer.ln_f.bias, transformer.ln_f.eps)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Hidden state float ``[B, 1, d_model]`` (after the final LayerNorm) of the input
        embeddings ``x`` float ``[B, 1, d_model]`` of the position after ``cache.length``.

        ``cache`` holds the B rows' earlier positions (``forward`` filled it); it advances by one.

        Raises:
            ConfigError: an empty cache (fill it with ``forward``) or a full one.
        """
        start, width = cache.length, self.width
        if not 0 < start < self.max_len:
            raise ConfigError(
                f"a decoding step needs a cache holding 1..{self.max_len - 1} positions, not {start}"
            )
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
        return F.layer_norm(h, (width,), *self.final)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one torch thread (``torch.set_num_threads(1)``), then restore the count.

    A decoding step is some 100-150 operations on a few rows: too small to split, and each split
    costs a wake-up and a wait of the second thread. With two threads on the 2-core test machine
    (shared with a training run) 5 s of the shipped audio LM took 1.8-3.5 s instead of 0.6 s on
    one. The setting is process-wide while it lasts.
    """
    threads = torch.get_num_threads()
    if threads > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)

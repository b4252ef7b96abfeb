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
``tests/symbolic/test_cursor.py`` check the equality. With ``int8=True`` the matrix products
use weight-only int8 copies (:mod:`notewave.core.int8`): close to, not equal to, ``forward``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from notewave.core.int8 import Int8Linear, int8_fits
from notewave.core.transformer import KVCache, Transformer
from notewave.errors import ConfigError


def linear_fn(layer: torch.nn.Linear, int8: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> layer(x)`` without the module call: ``F.linear`` on the layer's own tensors, or with
    ``int8`` an :class:`~notewave.core.int8.Int8Linear` copy of them where the layer's input width
    suits the kernel (:func:`~notewave.core.int8.int8_fits`; raises ConfigError where the torch
    build lacks the kernel)."""
    if int8 and int8_fits(layer.in_features):
        return Int8Linear(layer.weight, layer.bias)
    return functools.partial(F.linear, weight=layer.weight, bias=layer.bias)


class BlockStep:
    """``step(x, cache)``: the hidden state of one new position of ``transformer``.

    Args:
        transformer: the model's transformer in eval mode (its weight tensors are taken here:
            in-place changes show, replaced tensors need a new ``BlockStep``; int8 copies are
            made once, here).
        int8: matrix products with weight-only int8 copies (:mod:`notewave.core.int8`).

    Raises:
        ConfigError: ``int8`` where this torch build lacks the int8 kernel.
    """

    def __init__(self, transformer: Transformer, int8: bool = False):
        self.positions = transformer.pos_emb.weight
        self.max_len, self.width = transformer.config.max_seq_len, transformer.config.d_model
        self.blocks = [
            (b.attn.n_heads, (b.ln1.weight, b.ln1.bias, b.ln1.eps), linear_fn(b.attn.qkv, int8),
             linear_fn(b.attn.proj, int8), (b.ln2.weight, b.ln2.bias, b.ln2.eps),
             linear_fn(b.mlp[0], int8), b.mlp[1].approximate, linear_fn(b.mlp[2], int8))
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
            q, k, v = qkv(F.layer_norm(h, (width,), *ln1)).split(width, dim=2)
            q, k, v = (t.view(batch, steps, heads, -1).transpose(1, 2) for t in (q, k, v))
            keys, values = cache.keys[layer], cache.values[layer]
            keys[:, :, start : start + 1] = k
            values[:, :, start : start + 1] = v
            out = F.scaled_dot_product_attention(q, keys[:, :, : start + 1], values[:, :, : start + 1])
            h = h + proj(out.transpose(1, 2).reshape(batch, steps, width))
            h = h + down(F.gelu(up(F.layer_norm(h, (width,), *ln2)), approximate=approximate))
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

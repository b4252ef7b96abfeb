"""A decoder-only transformer shared by the symbolic and audio language models.

Pre-LayerNorm blocks (GPT-2 / nanoGPT layout), causal self-attention through
``torch.nn.functional.scaled_dot_product_attention`` (SDPA), learned absolute position
embeddings and a key/value cache for incremental decoding.

The transformer works on embeddings, not token ids: the symbolic model feeds token
embeddings, the audio model feeds the sum of K codebook embeddings with condition
embeddings prepended. Both add their own output heads.

References: Vaswani et al. 2017 (attention); Radford et al. 2019 (GPT-2, pre-LN);
Xiong et al. 2020 (on layer normalization in the transformer architecture).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from notewave.errors import ConfigError


@dataclass
class TransformerConfig:
    """Size of a :class:`Transformer`.

    Attributes:
        d_model: width of the residual stream.
        n_layers: number of transformer blocks.
        n_heads: attention heads; must divide ``d_model``.
        d_ff: hidden width of the feed-forward network (default ``4 * d_model``).
        max_seq_len: longest sequence (in positions) the model attends over.
        dropout: dropout probability on attention weights and residual branches.
        bias: whether linear layers and LayerNorms carry a bias.
    """

    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 0
    max_seq_len: int = 512
    dropout: float = 0.1
    bias: bool = True

    def __post_init__(self) -> None:
        if self.d_ff <= 0:
            self.d_ff = 4 * self.d_model
        if self.d_model <= 0 or self.n_layers <= 0 or self.n_heads <= 0 or self.max_seq_len <= 0:
            raise ConfigError(f"transformer sizes must be positive, got {self}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformerConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown transformer config keys: {sorted(unknown)}")
        return cls(**data)


class KVCache:
    """Pre-allocated keys and values for every layer.

    Tensors have shape ``[batch, n_heads, max_len, head_dim]`` and the model's dtype.
    ``length`` counts the positions already written; :meth:`Transformer.forward` appends
    to it and advances it.
    """

    def __init__(self, config: TransformerConfig, batch_size: int, device: torch.device, dtype: torch.dtype):
        head_dim = config.d_model // config.n_heads
        shape = (batch_size, config.n_heads, config.max_seq_len, head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        self.length = 0
        self.max_len = config.max_seq_len

    def reorder(self, index: torch.Tensor) -> None:
        """Select batch rows (``index``: int64 ``[batch']``), e.g. to drop finished samples."""
        self.keys = [k.index_select(0, index) for k in self.keys]
        self.values = [v.index_select(0, index) for v in self.values]


class SelfAttention(nn.Module):
    """Multi-head causal self-attention with an optional KV cache."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        batch, steps, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, steps, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
        start = 0
        if cache is not None:
            start = cache.length
            cache.keys[layer][:, :, start : start + steps] = k
            cache.values[layer][:, :, start : start + steps] = v
            k = cache.keys[layer][:, :, : start + steps]
            v = cache.values[layer][:, :, : start + steps]
        dropout = self.dropout if self.training else 0.0
        if start == 0:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        elif steps == 1:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        else:
            rows = torch.arange(start, start + steps, device=x.device)[:, None]
            cols = torch.arange(start + steps, device=x.device)[None, :]
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=cols <= rows, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(batch, steps, width)
        return self.resid_dropout(self.proj(out))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.attn = SelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model, bias=config.bias)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff, bias=config.bias),
            nn.GELU(approximate="tanh"),
            nn.Linear(config.d_ff, config.d_model, bias=config.bias),
            nn.Dropout(config.dropout),
        )

    def forward(self, x: torch.Tensor, cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, layer)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    """Stack of pre-LN blocks over input embeddings, with position embeddings and a final LayerNorm.

    ``forward(x [B, T, d_model] float, cache=None) -> hidden [B, T, d_model]``. With a
    cache, the T new positions are placed after ``cache.length`` positions already
    cached, and the cache advances by T.

    Raises:
        ConfigError: when the sequence (with the cache) exceeds ``max_seq_len``.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.pos_emb = nn.Embedding(config.max_seq_len, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model, bias=config.bias)
        self.apply(init_weights)
        for name, param in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                # GPT-2: scale residual projections by 1/sqrt(2 * n_layers).
                nn.init.normal_(param, mean=0.0, std=0.02 / (2 * config.n_layers) ** 0.5)

    def new_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> KVCache:
        """An empty :class:`KVCache` for ``batch_size`` sequences on the model's device."""
        weight = self.pos_emb.weight
        return KVCache(self.config, batch_size, weight.device, dtype or weight.dtype)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = cache.length if cache is not None else 0
        steps = x.shape[1]
        if start + steps > self.config.max_seq_len:
            raise ConfigError(
                f"sequence of {start + steps} positions exceeds the model context of "
                f"{self.config.max_seq_len}"
            )
        positions = torch.arange(start, start + steps, device=x.device)
        h = self.drop(x + self.pos_emb(positions))
        for layer, block in enumerate(self.blocks):
            h = block(h, cache, layer)
        if cache is not None:
            cache.length = start + steps
        return self.ln_f(h)


def init_weights(module: nn.Module) -> None:
    """GPT-2 initialisation: normal(0, 0.02) weights, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)

"""The MIDI language model: token embeddings, the shared core transformer and an output head.

A MuseNet-style decoder-only transformer (Payne 2019) over the multitrack tokens of
:class:`~notewave.symbolic.vocab.Vocab` (:mod:`notewave.symbolic.layout`). A plain module: the
model with its vocabulary, loading and editing MIDI, is :class:`notewave.pipelines.Composer`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from notewave.core.checkpoint import load_state, read_checkpoint, write_checkpoint
from notewave.core.transformer import KVCache, Transformer, TransformerConfig, init_weights
from notewave.errors import CheckpointError, ConfigError
from notewave.symbolic.cursor import COLUMNS, CURSOR_ROWS, HARMONY_ROWS, cursor_tensor
from notewave.symbolic.vocab import Vocab

# Named model sizes for `notewave train symbolic --config NAME`.
CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"d_model": 64, "n_layers": 2, "n_heads": 2, "max_seq_len": 256, "dropout": 0.0},
    "small": {"d_model": 256, "n_layers": 4, "n_heads": 4, "max_seq_len": 512, "dropout": 0.1},
    "medium": {"d_model": 384, "n_layers": 6, "n_heads": 6, "max_seq_len": 1024, "dropout": 0.1},
    "large": {"d_model": 512, "n_layers": 8, "n_heads": 8, "max_seq_len": 1024, "dropout": 0.1},
}


@dataclass
class MidiLMConfig:
    """Configuration of a :class:`MidiLM`: the vocabulary size, the padding id (ignored by the
    loss), the transformer's size and whether the model reads the metrical cursor features and
    (``harmony``, only with ``cursor``) the other tracks' sounding pitches
    (:mod:`notewave.symbolic.cursor`)."""

    vocab_size: int
    transformer: TransformerConfig
    pad_id: int = 0
    cursor: bool = False
    harmony: bool = False

    @property
    def feature_columns(self) -> int:
        """Columns of the feature rows the model reads (0: none; 2: cursor; all: with harmony)."""
        return COLUMNS if self.harmony else (2 if self.cursor else 0)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "vocab_size": self.vocab_size,
            "pad_id": self.pad_id,
            "transformer": asdict(self.transformer),
            "kind": "midi-lm",
        }
        if self.cursor:
            out["cursor"] = True
        if self.harmony:
            out["harmony"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MidiLMConfig:
        if data.get("kind") != "midi-lm":
            raise CheckpointError(f"not a MIDI LM config (kind={data.get('kind')!r})")
        transformer = TransformerConfig.from_dict(data["transformer"])
        cursor, harmony = data.get("cursor", False), data.get("harmony", False)
        if not isinstance(cursor, bool) or not isinstance(harmony, bool) or (harmony and not cursor):
            raise ConfigError(
                f"'cursor' and 'harmony' must be true or false, harmony only with cursor; got {data}"
            )
        return cls(int(data["vocab_size"]), transformer, int(data.get("pad_id", 0)), cursor, harmony)


def config_for(name: str, vocab: Vocab, **overrides: Any) -> MidiLMConfig:
    """The :class:`MidiLMConfig` of a named size (see :data:`CONFIGS`) for ``vocab``.

    Raises:
        ConfigError: for an unknown name.
    """
    if name not in CONFIGS:
        raise ConfigError(f"unknown model config {name!r}; choose one of {sorted(CONFIGS)}")
    sizes = {**CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return MidiLMConfig(len(vocab), TransformerConfig(**sizes), vocab.pad_id)


class MidiLM(nn.Module):
    """Decoder-only transformer over MIDI tokens.

    ``forward(ids int64 [B, T], cache=None, cursor=None) -> logits float32 [B, T, vocab_size]``;
    a model with ``config.cursor`` also reads ``cursor`` int64 ``[B, T, C]``, the rows of
    :func:`notewave.symbolic.cursor.cursor_features` for the same ids (C = its ``COLUMNS``; a
    model without ``harmony`` reads the first two), their embeddings summed into each
    token's embedding.

    Args:
        config: vocabulary, padding id and transformer sizes.
    """

    def __init__(self, config: MidiLMConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.transformer.d_model)
        self.transformer = Transformer(config.transformer)
        self.head = nn.Linear(config.transformer.d_model, config.vocab_size, bias=False)
        init_weights(self.tok_emb)
        init_weights(self.head)
        self.cursor_emb: nn.Embedding | None = None
        if config.cursor:
            self.config = replace(config, cursor=False, harmony=False)
            self.add_cursor(harmony=config.harmony)

    def add_cursor(self, harmony: bool = False) -> None:
        """Give the model the cursor embedding table (:data:`notewave.symbolic.cursor.CURSOR_ROWS`
        rows, plus :data:`~notewave.symbolic.cursor.HARMONY_ROWS` with ``harmony``), or grow a
        cursor-only table by the harmony rows. New rows start at zero, so that a trained model
        computes the same logits until training teaches it to use the features.

        Raises:
            ConfigError: the model has the table (and the harmony rows, if asked for) already.
        """
        old = self.cursor_emb
        if old is not None and (self.config.harmony or not harmony):
            raise ConfigError("this model already has its cursor embedding")
        weight = self.tok_emb.weight
        rows = CURSOR_ROWS + (HARMONY_ROWS if harmony else 0)
        table = nn.Embedding(rows, self.config.transformer.d_model).to(weight.device, weight.dtype)
        nn.init.zeros_(table.weight)
        if old is not None:
            with torch.no_grad():
                table.weight[: old.num_embeddings] = old.weight
        self.cursor_emb = table
        self.config = replace(self.config, cursor=True, harmony=harmony)

    @property
    def context(self) -> int:
        """Longest sequence, in tokens, the model attends over."""
        return self.config.transformer.max_seq_len

    def new_cache(self, batch_size: int) -> KVCache:
        return self.transformer.new_cache(batch_size)

    def cursor_rows(self, vocab: Vocab, ids: torch.Tensor) -> torch.Tensor | None:
        """The cursor and harmony rows (int64 ``[B, T, COLUMNS]``, :func:`cursor_tensor`) of ids
        (int64 ``[B, T]``) when this model reads them (``config.cursor``), else ``None``: the
        ``cursor`` argument of :meth:`forward` for a whole sequence."""
        return cursor_tensor(vocab, ids) if self.config.cursor else None

    def forward(
        self, ids: torch.Tensor, cache: KVCache | None = None, cursor: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.tok_emb(ids)
        if self.cursor_emb is not None:
            if cursor is None:
                raise ConfigError("this composer reads cursor features: pass cursor=cursor_features(...)")
            columns = self.config.feature_columns
            if cursor.shape[:-1] != ids.shape or cursor.shape[-1] < columns:
                raise ConfigError(
                    f"cursor rows must have shape {(*ids.shape, COLUMNS)}, not {tuple(cursor.shape)}"
                )
            x = x + self.cursor_emb(cursor[..., :columns]).sum(dim=-2)
        return self.head(self.transformer(x, cache))

    def loss(
        self, ids: torch.Tensor, reduction: str = "mean", cursor: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Next-token cross-entropy (nats) of ``ids`` ``[B, T]``; padding (``PAD``) is ignored.

        ``reduction`` is ``"mean"`` (per predicted token) or ``"sum"``; ``cursor`` int64
        ``[B, T, COLUMNS]`` (the rows of :func:`~notewave.symbolic.cursor.cursor_features`) is required
        by a model with ``config.cursor``.
        """
        logits = self(ids[:, :-1], cursor=None if cursor is None else cursor[:, :-1])
        targets = ids[:, 1:]
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            targets.reshape(-1),
            ignore_index=self.config.pad_id,
            reduction=reduction,
        )

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ---- checkpoints ------------------------------------------------------------------
    def save_pretrained(
        self,
        path: str | os.PathLike[str],
        extra_config: dict[str, Any] | None = None,
        extra_files: Callable[[Path], None] | None = None,
        dtype: torch.dtype | None = None,
    ) -> Path:
        """Write ``model.safetensors`` and ``config.json`` to the folder ``path`` atomically
        (``extra_files`` may add more files, such as the tokenizer, to the temporary folder first).

        ``dtype`` (e.g. ``torch.float16``) stores the weights in a smaller type; they are cast
        back to the model's type on loading.
        """
        config = {**self.config.to_dict(), **(extra_config or {})}
        state = self.state_dict()
        if dtype is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        return write_checkpoint(path, state, config, extra=extra_files)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], map_location: str = "cpu") -> MidiLM:
        """Load a model saved by :meth:`save_pretrained`.

        Raises:
            CheckpointError: for a missing, truncated or mismatching checkpoint folder.
        """
        tensors, raw = read_checkpoint(path)
        try:
            config = MidiLMConfig.from_dict(raw)
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise CheckpointError(f"checkpoint {path} has an invalid config.json: {exc}") from exc
        model = cls(config)
        load_state(model, tensors, path)
        model.checkpoint_config = raw
        return model.to(map_location).eval()

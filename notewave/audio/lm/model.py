"""The audio language model: a decoder-only transformer over the K codebooks of a neural codec.

After MusicGen (Copet et al. 2023, "Simple and Controllable Music Generation"), which models
the multi-codebook tokens of a residual-quantized codec with a single transformer, in the
tradition of AudioLM (Borsos et al. 2023, "AudioLM: a Language Modeling Approach to Audio
Generation"). A clip's codes ``[B, K, T]`` (T frames at the codec's frame rate, e.g. 50 Hz) are
laid out in S decoding steps by a codebook pattern (:mod:`notewave.audio.lm.patterns`, default
``"delay"``); positions without a code hold the special token ``codebook_size``.

* Input of step ``s``: the sum of K embeddings (one table of ``codebook_size + 1`` entries per
  codebook, the extra one for the special token) of the tokens of step ``s - 1``; step 0 reads
  special tokens only.
* Conditions (melody chroma, style, text; :mod:`notewave.audio.lm.conditioning`) are embedded into
  a prefix of ``prefix_length`` positions prepended to the steps; with ``melody_fuse="sum"`` the
  melody is instead added to each step's input, for the frame that step writes.
* K linear heads give ``codebook_size`` logits each at every step, so the special token can never
  be sampled; the loss is the cross-entropy of each codebook over its valid positions (the
  pattern mask), averaged over the K codebooks, in nats.

Generation: :mod:`notewave.audio.lm.generate`; training: :mod:`notewave.audio.lm.train`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from notewave.audio.lm.conditioning import ConditionConfig, ConditionEncoder, Conditions
from notewave.audio.lm.patterns import CodebookPattern, get_pattern
from notewave.core.checkpoint import load_state, read_checkpoint, write_checkpoint
from notewave.core.transformer import KVCache, Transformer, TransformerConfig, init_weights
from notewave.errors import CheckpointError, ConfigError, NotewaveError
from notewave.paths import DEFAULT_AUDIO_CHECKPOINT

KIND = "audio-lm"


@dataclass
class AudioLMConfig:
    """Configuration of an :class:`AudioLM`.

    Attributes:
        num_codebooks: K, codebooks per frame.
        codebook_size: N, codes per codebook (the special token id is N).
        transformer: the core transformer's sizes (``max_seq_len`` must hold the prefix plus the
            steps of ``max_frames`` frames; :func:`~notewave.audio.lm.train.config_for` sets it).
        conditions: which conditions and style tags.
        pattern: codebook pattern name (``parallel``, ``delay``, ``flatten``, ``coarse_first``).
        max_frames: the training window in codec frames; longer generations slide a window.
        sample_rate: codec audio rate in Hz.
        frame_rate: codec frames per second (Hz).
        codec: identity (:func:`~notewave.audio.lm.codec_link.codec_identity`) of the codec whose codes
            the model reads (``{}``: unknown).
    """

    num_codebooks: int
    codebook_size: int
    transformer: TransformerConfig
    conditions: ConditionConfig = field(default_factory=ConditionConfig)
    pattern: str = "delay"
    max_frames: int = 250
    sample_rate: int = 32000
    frame_rate: float = 50.0
    codec: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_codebooks < 1 or self.codebook_size < 2 or self.max_frames < 1:
            raise ConfigError(f"invalid audio LM sizes: {self}")
        get_pattern(self.pattern, self.num_codebooks)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["transformer"] = self.transformer.to_dict()
        out["conditions"] = self.conditions.to_dict()
        out["kind"] = KIND
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioLMConfig:
        if data.get("kind") != KIND:
            raise CheckpointError(f"not an audio LM config (kind={data.get('kind')!r})")
        data = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}  # extras: training, ...
        data["transformer"] = TransformerConfig.from_dict(data["transformer"])
        data["conditions"] = ConditionConfig.from_dict(data["conditions"])
        return cls(**data)


class AudioLM(nn.Module):
    """Decoder-only transformer over codec codes laid out by a codebook pattern (see module docstring).

    ``forward(tokens int64 [B, K, S], conditions=None, cache=None) -> logits float [B, K, S, N]``.

    A plain module: generation with a codec (decoding codes to audio, encoding audio prompts) is
    :class:`notewave.pipelines.SoundGenerator`; the sampling loop is
    :func:`notewave.audio.lm.generate.generate_codes`.

    Args:
        config: sizes, pattern and conditions.
    """

    def __init__(self, config: AudioLMConfig):
        super().__init__()
        self.config = config
        d = config.transformer.d_model
        self.pattern: CodebookPattern = get_pattern(config.pattern, config.num_codebooks)
        self.special = config.codebook_size
        self.emb = nn.ModuleList(
            nn.Embedding(config.codebook_size + 1, d) for _ in range(config.num_codebooks)
        )
        self.conditioner = ConditionEncoder(config.conditions, d, config.max_frames)
        self.transformer = Transformer(config.transformer)
        self.heads = nn.ModuleList(
            nn.Linear(d, config.codebook_size, bias=False) for _ in range(config.num_codebooks)
        )
        for module in (*self.emb, *self.heads):
            init_weights(module)
        needed = self.prefix_length + self.pattern.num_steps(config.max_frames)
        if config.transformer.max_seq_len < needed:
            raise ConfigError(
                f"max_seq_len={config.transformer.max_seq_len} cannot hold {self.prefix_length} condition "
                f"positions and the {needed - self.prefix_length} steps of {config.max_frames} frames"
            )

    # ---- sizes: K, N, condition positions, window (frames), rates (Hz) -----------------------------
    num_codebooks = property(lambda self: self.config.num_codebooks)
    codebook_size = property(lambda self: self.config.codebook_size)
    prefix_length = property(lambda self: self.conditioner.prefix_length)
    max_frames = property(lambda self: self.config.max_frames)
    sample_rate = property(lambda self: self.config.sample_rate)
    frame_rate = property(lambda self: self.config.frame_rate)

    def new_cache(self, batch_size: int) -> KVCache:
        return self.transformer.new_cache(batch_size)

    # ---- model --------------------------------------------------------------------------------
    def check_codes(self, codes: Any, name: str = "codes") -> torch.Tensor:
        """Return ``codes`` as int64 ``[B, K, T]``.

        Raises:
            ConfigError: not an integer tensor ``[B, K, T]`` with this model's K, T >= 1, or values
                outside ``[0, codebook_size)``.
        """
        if not isinstance(codes, torch.Tensor) or codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ConfigError(f"{name} must be an integer torch.Tensor [B, K, T], got {type(codes).__name__}")
        if codes.dim() != 3 or codes.shape[1] != self.num_codebooks or 0 in codes.shape:
            raise ConfigError(
                f"{name} must have shape [B, {self.num_codebooks}, T] (this model reads "
                f"{self.num_codebooks} codebooks), got {tuple(codes.shape)}"
            )
        if bool(((codes < 0) | (codes >= self.codebook_size)).any()):
            raise ConfigError(
                f"{name} hold values in [{int(codes.min())}, {int(codes.max())}], outside the codebook "
                f"range [0, {self.codebook_size})"
            )
        return codes.long()

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Sum of the K codebook embeddings of ``tokens`` int64 ``[B, K, S]`` -> float ``[B, S, d_model]``."""
        return sum(emb(tokens[:, k]) for k, emb in enumerate(self.emb))  # type: ignore[return-value]

    def forward(
        self,
        tokens: torch.Tensor,
        conditions: Conditions | None = None,
        cache: KVCache | None = None,
        frames: int | None = None,
        melody: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next-step logits float ``[B, K, S, codebook_size]`` for input tokens int64 ``[B, K, S]``.

        ``conditions`` are embedded and prepended (``None`` on a fresh start: no condition); with a
        cache, pass them with the first call only. Position ``s`` of the output predicts the codes of
        step ``s`` (inputs: :meth:`input_tokens`) of a window of ``frames`` frames (default
        ``max_frames``), whose frame times are embedded (see ``ConditionConfig.time_embedding``).
        ``melody``: a summed-melody model's :meth:`melody_steps` of the whole window, float
        ``[B, S_window, d_model]``; needed on calls after the first (computed from ``conditions`` when
        absent).

        Raises:
            ConfigError: a summed-melody model continued from a cache without ``melody``.
        """
        batch, _, steps = tokens.shape
        fresh = cache is None or cache.length == 0
        if conditions is None and fresh:
            conditions = Conditions.empty(batch, 1, self.config.conditions.text_dim).to(tokens.device)
        start = 0 if fresh else cache.length - self.prefix_length  # type: ignore[union-attr]
        x = self.embed(tokens)
        step_frames = self.step_frames(frames).to(tokens.device)
        time = self.conditioner.step_time(step_frames[start : start + steps])
        if time is not None:
            x = x + time
        if self.conditioner.sums_melody:
            if melody is None:
                if conditions is None:
                    raise ConfigError(
                        "this model adds its melody to every step: pass melody= after the first call"
                    )
                melody = self.conditioner.step_melody(conditions, step_frames)  # = melody_steps()
            x = x + melody[:, start : start + steps].to(x.dtype)  # type: ignore[index]
        if conditions is not None:
            x = torch.cat([self.conditioner(conditions).to(x.dtype), x], dim=1)
        h = self.transformer(x, cache)[:, x.shape[1] - steps :]
        return torch.stack([head(h) for head in self.heads], dim=1)

    def step_frames(self, frames: int | None = None) -> torch.Tensor:
        """The codec frame each decoding step of a ``frames``-frame window (default ``max_frames``)
        writes, int64 ``[S]`` (the latest frame among the step's codebooks; the frame-time embedding
        and a summed melody are those of this frame)."""
        return self.pattern.step_positions(frames or self.max_frames).max(0).values

    def melody_steps(self, conditions: Conditions, frames: int | None = None) -> torch.Tensor | None:
        """What a summed-melody model (``melody_fuse="sum"``) adds to each decoding step of a window of
        ``frames`` frames (default ``max_frames``): float ``[B, S, d_model]``; ``None`` for a model
        whose melody (if any) is a prefix."""
        return self.conditioner.step_melody(conditions, self.step_frames(frames).to(conditions.melody.device))

    def input_tokens(self, seq: torch.Tensor) -> torch.Tensor:
        """Decoder inputs of a pattern sequence ``seq [B, K, S]``: shifted right one step, special first."""
        start = torch.full_like(seq[:, :, :1], self.special)
        return torch.cat([start, seq[:, :, :-1]], dim=2)

    def loss(
        self, codes: torch.Tensor, conditions: Conditions | None = None, reduction: str = "mean"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy (nats) of ``codes`` int64 ``[B, K, T]`` (T <= max_frames) given ``conditions``.

        Returns:
            ``(loss, per_codebook)``: with ``reduction="mean"`` the mean over the K codebooks of
            each codebook's mean over its valid positions, and float32 ``[K]`` those means; with
            ``"sum"`` the summed NLL and float32 ``[K]`` per-codebook sums.

        Raises:
            ConfigError: bad codes, or more frames than the context holds.
        """
        codes = self.check_codes(codes)
        if codes.shape[2] > self.max_frames:
            raise ConfigError(f"{codes.shape[2]} frames exceed the model window of {self.max_frames} frames")
        seq, mask = self.pattern.build(codes, self.special)
        return codes_loss(
            self(self.input_tokens(seq), conditions, None, codes.shape[2]), seq, mask, reduction
        )

    # ---- checkpoints --------------------------------------------------------------------------
    def save_pretrained(
        self,
        path: str | os.PathLike[str],
        extra_config: dict[str, Any] | None = None,
        extra_files: Callable[[Path], None] | None = None,
        half: bool = False,
        codec_path: str | os.PathLike[str] | None = None,
    ) -> Path:
        """Write ``model.safetensors`` and ``config.json`` (``kind: "audio-lm"``) to ``path`` atomically.

        Args:
            extra_config: more keys for ``config.json`` (e.g. ``training``).
            extra_files: called with the temporary folder to add files.
            half: store float weights as float16 (loaded back as float32).
            codec_path: where the codec lives, recorded in ``config.codec.path`` as a default for
                :meth:`from_pretrained`.
        """
        config = self.config.to_dict()
        if codec_path is not None:
            config["codec"] = {**config["codec"], "path": str(codec_path)}
        config.update({"weights_dtype": "float16" if half else "float32", **(extra_config or {})})
        state = {k: v.half() if half and v.is_floating_point() else v for k, v in self.state_dict().items()}
        return write_checkpoint(path, state, config, extra=extra_files)

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str] = DEFAULT_AUDIO_CHECKPOINT,
        map_location: str = "cpu",
    ) -> AudioLM:
        """Load an audio LM written by :meth:`save_pretrained` (eval mode), without a codec (see
        :class:`notewave.pipelines.SoundGenerator` for the LM with its codec).

        Args:
            path: checkpoint folder (default: the shipped one).

        Raises:
            CheckpointError: missing/corrupt folder, not an audio LM, or weights that do not match.
        """
        tensors, raw = read_checkpoint(path)
        try:
            config = AudioLMConfig.from_dict(raw)
            model = cls(config)
        except CheckpointError as exc:
            raise CheckpointError(f"checkpoint {path}: {exc}") from exc
        except (KeyError, TypeError, ValueError, NotewaveError) as exc:
            raise CheckpointError(f"checkpoint {path} has an invalid audio LM config.json: {exc}") from exc
        reference = model.state_dict()
        load_state(
            model, {k: v.to(reference[k].dtype) if k in reference else v for k, v in tensors.items()}, path
        )
        model.checkpoint_config = raw
        return model.to(map_location).eval()


def codes_loss(
    logits: torch.Tensor, seq: torch.Tensor, mask: torch.Tensor, reduction: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-codebook cross-entropy (nats) of ``logits [B, K, S, N]`` against ``seq [B, K, S]`` where
    ``mask [K, S]`` is True; see :meth:`AudioLM.loss` for the result."""
    if reduction not in ("mean", "sum"):
        raise ConfigError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    per_book = [
        F.cross_entropy(
            logits[:, k, mask[k]].reshape(-1, logits.shape[-1]).float(),
            seq[:, k, mask[k]].reshape(-1),
            reduction=reduction,
        )
        for k in range(seq.shape[1])
    ]
    stacked = torch.stack(per_book)
    return (stacked.sum() if reduction == "sum" else stacked.mean()), stacked.detach()

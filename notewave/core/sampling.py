"""Sampling from next-token logits: temperature, top-k, nucleus (top-p) and logit masks.

References: Fan et al. 2018 (top-k sampling); Holtzman et al. 2020, "The Curious Case of
Neural Text Degeneration" (nucleus / top-p sampling).
"""

from __future__ import annotations

import torch

from notewave.errors import ConfigError


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise :class:`ConfigError` for temperature <= 0, ``top_k < 1`` or ``top_p`` outside (0, 1]."""
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")


def filter_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return logits with disallowed entries set to ``-inf``, scaled by ``1 / temperature``.

    Args:
        logits: float ``[..., V]``.
        temperature: > 0; lower is greedier.
        top_k: keep the ``k`` largest logits (after masking).
        top_p: keep the smallest set of tokens whose probability mass reaches ``p``.
        allowed: bool ``[..., V]`` (or broadcastable), ``True`` where a token may be
            sampled; applied before top-k/top-p so they act on legal tokens only.

    Raises:
        ConfigError: on invalid arguments or when ``allowed`` leaves no token in some row.
    """
    check_sampling_args(temperature, top_k, top_p)
    logits = logits.float() / temperature
    if allowed is not None:
        if not bool(allowed.any(dim=-1).all()):
            raise ConfigError("the logit mask allows no token in some row")
        logits = logits.masked_fill(~allowed, float("-inf"))
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the mass before it already reaches top_p (the first token always stays).
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    allowed: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token id per row from ``logits`` ``[B, V]``; returns int64 ``[B]``.

    See :func:`filter_logits` for the arguments. ``generator`` makes draws reproducible.
    """
    filtered = filter_logits(logits, temperature, top_k, top_p, allowed)
    probs = torch.softmax(filtered, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

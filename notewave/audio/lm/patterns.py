"""Codebook interleaving patterns for a language model over multi-codebook audio codes.

A residual quantizer turns every audio frame into K codes, one per codebook, so a clip
is an int64 tensor ``codes [B, K, T]`` (T frames). A language model predicts these codes
in S *decoding steps*; at each step it emits one token per codebook, and a *pattern*
decides which (codebook, frame) code sits at which (codebook, step) position. Positions
that hold no code carry a special "empty" token id (``special``, e.g. ``codebook_size``)
and are masked out of the loss. See Copet et al. 2023, "Simple and Controllable Music
Generation" (MusicGen), sec. 2.2 and Table 3, for the patterns and their trade-offs.

Patterns (``S`` = number of steps for ``T`` frames and ``K`` codebooks):

* ``parallel``: ``S = T``; step ``t`` holds all K codes of frame ``t``.
* ``delay``: ``S = T + K - 1``; codebook ``k`` is shifted right by ``k`` steps, so step
  ``s`` holds code ``(k, s - k)`` for every ``k`` with ``0 <= s - k < T``.
* ``flatten``: ``S = T * K``; step ``t * K + k`` holds only code ``(k, t)``.
* ``coarse_first``: ``S = 2 * T`` when ``K > 1`` (``S = T`` when ``K == 1``); steps
  ``0 .. T-1`` hold codebook 0 of frames ``0 .. T-1`` (the coarse codes of the whole clip
  first), then step ``T + t`` holds codebooks ``1 .. K-1`` of frame ``t`` in parallel.

Every pattern is a bijection between the K*T codes and the valid positions, so
:meth:`CodebookPattern.revert` undoes :meth:`CodebookPattern.build` exactly. For the
generation loop, :meth:`~CodebookPattern.valid_at` says which codebooks are sampled at a
step, :meth:`~CodebookPattern.frame_at` which frame each of them writes, and
:meth:`~CodebookPattern.frames_done` how many leading frames are complete.

All shape, dtype and value errors raise :class:`~notewave.errors.ConfigError`.
"""

from __future__ import annotations

import torch

from notewave.errors import ConfigError

PATTERNS = ("parallel", "delay", "flatten", "coarse_first")

_CACHE_SIZE = 8


class CodebookPattern:
    """Base class: a pattern is fully described by its layout ``[K, S]`` of frame indices.

    Subclasses implement :meth:`num_steps` and :meth:`_layout`; everything else is shared.

    Args:
        num_codebooks: K, the number of codebooks (>= 1).

    Raises:
        ConfigError: ``num_codebooks`` is not a positive int.
    """

    name = "base"

    def __init__(self, num_codebooks: int) -> None:
        if isinstance(num_codebooks, bool) or not isinstance(num_codebooks, int) or num_codebooks < 1:
            raise ConfigError(f"num_codebooks must be a positive int, got {num_codebooks!r}")
        self.num_codebooks = num_codebooks
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_codebooks={self.num_codebooks})"

    # --- to implement -------------------------------------------------------------------
    def num_steps(self, num_frames: int) -> int:
        """Number of decoding steps S for ``num_frames`` frames."""
        raise NotImplementedError

    def _layout(self, num_frames: int) -> torch.Tensor:
        """int64 ``[K, S]``: frame held at (codebook k, step s), or -1 where empty."""
        raise NotImplementedError

    # --- shared ------------------------------------------------------------------------
    def _check_frames(self, num_frames: int) -> int:
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
            raise ConfigError(f"the number of frames must be a positive int, got {num_frames!r}")
        return num_frames

    def _tables(self, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached (layout ``[K, S]``, positions ``[K, T]``) on the CPU, both int64."""
        self._check_frames(num_frames)
        if num_frames not in self._cache:
            layout = self._layout(num_frames)
            k_idx, s_idx = torch.nonzero(layout >= 0, as_tuple=True)
            positions = torch.full((self.num_codebooks, num_frames), -1, dtype=torch.long)
            positions[k_idx, layout[k_idx, s_idx]] = s_idx
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[num_frames] = (layout, positions)
        return self._cache[num_frames]

    def step_positions(self, num_frames: int) -> torch.Tensor:
        """int64 ``[K, S]`` (CPU): the frame held at (codebook k, step s), -1 where empty."""
        return self._tables(num_frames)[0].clone()

    def frame_positions(self, num_frames: int) -> torch.Tensor:
        """int64 ``[K, T]`` (CPU): the step that holds code (codebook k, frame t)."""
        return self._tables(num_frames)[1].clone()

    def mask(self, num_frames: int, device: torch.device | str | None = None) -> torch.Tensor:
        """bool ``[K, S]``: True where a real code sits (exactly K*T entries)."""
        return (self._tables(num_frames)[0] >= 0).to(device)

    def _check_step(self, step: int, num_frames: int) -> int:
        total = self.num_steps(self._check_frames(num_frames))
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < total:
            raise ConfigError(f"step must be an int in [0, {total}) for {num_frames} frames, got {step!r}")
        return step

    def frame_at(self, step: int, num_frames: int) -> torch.Tensor:
        """int64 ``[K]`` (CPU): the frame each codebook writes at ``step``, -1 if none."""
        step = self._check_step(step, num_frames)
        return self._tables(num_frames)[0][:, step].clone()

    def valid_at(self, step: int, num_frames: int) -> torch.Tensor:
        """bool ``[K]`` (CPU): which codebooks hold a real code (are sampled) at ``step``."""
        return self.frame_at(step, num_frames) >= 0

    def frames_done(self, step: int, num_frames: int) -> int:
        """Number of leading frames whose K codes all lie in steps ``0 .. step`` (inclusive)."""
        step = self._check_step(step, num_frames)
        last = self._tables(num_frames)[1].max(dim=0).values  # [T] step completing each frame
        incomplete = torch.nonzero(last > step)
        return int(incomplete[0, 0]) if len(incomplete) else num_frames

    def build(self, codes: torch.Tensor, special: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Lay ``codes`` out in decoding steps.

        Args:
            codes: int64 ``[B, K, T]`` (any integer dtype is accepted), K == num_codebooks.
            special: token id written where no code sits; must not occur in ``codes``.

        Returns:
            ``(seq, mask)``: ``seq`` int64 ``[B, K, S]`` on the device of ``codes``, and
            ``mask`` bool ``[K, S]`` (True where ``seq`` holds a real code).

        Raises:
            ConfigError: wrong rank, dtype or K, no frames, or ``special`` occurs in codes.
        """
        if isinstance(special, bool) or not isinstance(special, int):
            raise ConfigError(f"special must be an int token id, got {special!r}")
        codes = self._check_tensor(codes, "codes")
        batch, _, frames = codes.shape
        layout, _ = self._tables(self._check_frames(frames))
        if bool((codes == special).any()):
            raise ConfigError(f"the special token id {special} also occurs in codes")
        layout = layout.to(codes.device)
        mask = layout >= 0
        index = layout.clamp(min=0).unsqueeze(0).expand(batch, -1, -1)
        seq = torch.where(mask, codes.gather(2, index), special)
        return seq, mask

    def revert(self, seq: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Exact inverse of :meth:`build`: read ``codes [B, K, T]`` back from ``seq``.

        Args:
            seq: int64 ``[B, K, S]`` with ``S == num_steps(num_frames)``; the values at
                empty positions are ignored (so a partially generated seq reverts too).
            num_frames: T.

        Returns:
            int64 ``[B, K, T]`` on the device of ``seq``.

        Raises:
            ConfigError: wrong rank, dtype, K or number of steps.
        """
        seq = self._check_tensor(seq, "seq")
        _, positions = self._tables(self._check_frames(num_frames))
        expected = self.num_steps(num_frames)
        if seq.shape[2] != expected:
            raise ConfigError(
                f"seq has {seq.shape[2]} steps, but pattern {self.name!r} with "
                f"{self.num_codebooks} codebooks needs {expected} steps for {num_frames} frames"
            )
        index = positions.to(seq.device).unsqueeze(0).expand(seq.shape[0], -1, -1)
        return seq.gather(2, index)

    def _check_tensor(self, x: torch.Tensor, name: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise ConfigError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
            raise ConfigError(f"{name} must be an integer tensor, got dtype {x.dtype}")
        if x.dim() != 3:
            raise ConfigError(f"{name} must have shape [B, K, T], got {tuple(x.shape)}")
        if x.shape[1] != self.num_codebooks:
            raise ConfigError(
                f"{name} has {x.shape[1]} codebooks, but the {self.name!r} pattern "
                f"was built for {self.num_codebooks}"
            )
        return x.long()


class ParallelPattern(CodebookPattern):
    """All K codes of frame t at step t (S = T)."""

    name = "parallel"

    def num_steps(self, num_frames: int) -> int:
        return self._check_frames(num_frames)

    def _layout(self, num_frames: int) -> torch.Tensor:
        return torch.arange(num_frames).expand(self.num_codebooks, -1).clone()


class DelayPattern(CodebookPattern):
    """Codebook k delayed by k steps (S = T + K - 1): step s holds code (k, s - k)."""

    name = "delay"

    def num_steps(self, num_frames: int) -> int:
        return self._check_frames(num_frames) + self.num_codebooks - 1

    def _layout(self, num_frames: int) -> torch.Tensor:
        steps = torch.arange(self.num_steps(num_frames))
        frame = steps.unsqueeze(0) - torch.arange(self.num_codebooks).unsqueeze(1)
        return torch.where((frame >= 0) & (frame < num_frames), frame, torch.full_like(frame, -1))


class FlattenPattern(CodebookPattern):
    """One code per step (S = T * K): step t*K + k holds code (k, t)."""

    name = "flatten"

    def num_steps(self, num_frames: int) -> int:
        return self._check_frames(num_frames) * self.num_codebooks

    def _layout(self, num_frames: int) -> torch.Tensor:
        k = self.num_codebooks
        layout = torch.full((k, num_frames * k), -1, dtype=torch.long)
        for book in range(k):
            layout[book, book::k] = torch.arange(num_frames)
        return layout


class CoarseFirstPattern(CodebookPattern):
    """Codebook 0 of every frame first (steps 0..T-1), then codebooks 1..K-1 of frame t at step T + t.

    S = 2T for K > 1 and S = T for K == 1 (then it equals ``parallel``).
    """

    name = "coarse_first"

    def num_steps(self, num_frames: int) -> int:
        return self._check_frames(num_frames) * (2 if self.num_codebooks > 1 else 1)

    def _layout(self, num_frames: int) -> torch.Tensor:
        layout = torch.full((self.num_codebooks, self.num_steps(num_frames)), -1, dtype=torch.long)
        layout[0, :num_frames] = torch.arange(num_frames)
        if self.num_codebooks > 1:
            layout[1:, num_frames:] = torch.arange(num_frames)
        return layout


_CLASSES: dict[str, type[CodebookPattern]] = {
    cls.name: cls for cls in (ParallelPattern, DelayPattern, FlattenPattern, CoarseFirstPattern)
}


def get_pattern(name: str, num_codebooks: int) -> CodebookPattern:
    """Return the pattern called ``name`` (one of :data:`PATTERNS`) for ``num_codebooks`` codebooks.

    Raises:
        ConfigError: unknown name (the message lists the known ones) or bad ``num_codebooks``.
    """
    if name not in _CLASSES:
        raise ConfigError(f"unknown codebook pattern {name!r}; choose one of {', '.join(PATTERNS)}")
    return _CLASSES[name](num_codebooks)

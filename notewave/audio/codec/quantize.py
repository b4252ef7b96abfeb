"""Residual vector quantization (RVQ) of codec latents, with EMA codebooks.

A :class:`VectorQuantizer` maps each latent vector (one per frame) to the nearest of N
codebook vectors (van den Oord et al. 2017, "Neural Discrete Representation Learning").
The codebook is not trained by gradients but by exponential moving averages of the
vectors assigned to each code (the same paper, appendix A.1), with Laplace smoothing of
the cluster sizes. It is initialised by k-means on the first training batch, and codes
that fall out of use are restarted on random vectors of the current batch (both as in
Zeghidour et al. 2021, SoundStream, and Défossez et al. 2022, EnCodec).

A :class:`ResidualVectorQuantizer` stacks K of them: quantizer k quantizes what the
first k-1 left over, so the first codebooks carry the coarse structure and each further
one refines it. With *quantizer dropout* (SoundStream sec. 3.3) a training batch uses
only the first n_q ~ U{1..K} quantizers, so one model serves K bitrates.

Shapes: latents are float ``[B, D, T]`` (batch, latent dim, frames), codes int64
``[B, T]`` for one quantizer and ``[B, n_q, T]`` for the residual stack. All state (the
codebooks, EMA statistics and the ``initialized`` flag) lives in float32/bool *buffers*,
so ``state_dict()`` can be saved with safetensors and restores the quantizer exactly.
Distances are computed in float32 with autocast disabled (a globally enabled TF32 matmul
still applies on GPUs).

Under data parallelism (``torch.distributed`` initialised, world size > 1) the codebooks stay
identical on every process: the k-means initialisation and the dead-code restart candidates
come from rank 0 (broadcast), the EMA counts and sums are all-reduced (summed) before the
update, so the statistics cover the global batch, and quantizer dropout draws one ``n_q`` for
all ranks. Every rank must therefore call the quantizer the same number of times.

Bad shapes, dtypes, options and code values raise :class:`~notewave.errors.ConfigError`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from notewave.audio.codec.config import codebook_count
from notewave.core.distributed import all_reduce_sum, broadcast_from_rank0, world_size
from notewave.errors import ConfigError

_CHUNK_ELEMENTS = 1 << 22  # distance-matrix entries computed at once


def _nearest(x: torch.Tensor, codebook: torch.Tensor, code_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Index (int64 ``[M]``) of the nearest row of ``codebook [N, D]`` for each row of ``x [M, D]``:
    argmin of ``|c|^2 - 2 x.c`` as one matmul (``code_sq``: the ``[N]`` squared norms, if known)."""
    code_sq = codebook.pow(2).sum(1) if code_sq is None else code_sq
    rows = max(1, _CHUNK_ELEMENTS // codebook.shape[0])
    parts = [torch.addmm(code_sq, chunk, codebook.T, alpha=-2).argmin(1) for chunk in x.split(rows)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long, device=x.device)


def _histogram(codes: torch.Tensor, size: int) -> torch.Tensor:
    """float32 ``[size]`` counts of each code in ``codes`` (any shape); no host sync, unlike bincount."""
    flat = codes.reshape(-1)
    ones = torch.ones(flat.shape, device=flat.device)
    return torch.zeros(size, device=flat.device).index_add_(0, flat, ones)


def _perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of the histogram ``counts [..., N]``: 1 (one code used) up to N (uniform use)."""
    p = counts / counts.sum(-1, keepdim=True).clamp(min=1)
    return torch.exp(-torch.special.xlogy(p, p).sum(-1))


def kmeans(x: torch.Tensor, num_clusters: int, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means++ seeding then ``iters`` Lloyd iterations on float32 ``x [M, D]``.

    With fewer distinct vectors than clusters the remaining seeds are drawn uniformly
    (with replacement). Empty clusters keep their seed. Uses the global torch RNG.

    Returns:
        ``(centroids [num_clusters, D], counts [num_clusters])``, both float32, where
        ``counts`` is the number of vectors nearest to each centroid.
    """
    m = x.shape[0]
    centroids = x.new_empty(num_clusters, x.shape[1])
    first = int(torch.randint(m, (1,)))
    centroids[0] = x[first]
    min_dist = (x - x[first]).pow(2).sum(1)
    for i in range(1, num_clusters):
        # D^2 sampling; all-zero distances (every vector already picked) -> uniform, without a host sync
        weights = min_dist + (min_dist.sum() <= 0).float()
        pick = torch.multinomial(weights, 1)[0]
        centroids[i] = x[pick]
        min_dist = torch.minimum(min_dist, (x - x[pick]).pow(2).sum(1))
    for _ in range(iters):
        assign = _nearest(x, centroids)
        counts = _histogram(assign, num_clusters)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centroids)
    return centroids, _histogram(_nearest(x, centroids), num_clusters)


def _check_latents(x: torch.Tensor, dim: int) -> None:
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise ConfigError(f"latents must be a floating-point tensor, got {getattr(x, 'dtype', type(x))}")
    if x.dim() != 3 or x.shape[1] != dim or x.shape[0] == 0 or x.shape[2] == 0:
        raise ConfigError(f"latents must have shape [B, {dim}, T] with B, T >= 1, got {tuple(x.shape)}")


def _check_codes(codes: torch.Tensor, size: int, rank: int, layout: str) -> torch.Tensor:
    if not isinstance(codes, torch.Tensor) or codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise ConfigError(f"codes must be an integer tensor, got {getattr(codes, 'dtype', type(codes))}")
    if codes.dim() != rank:
        raise ConfigError(f"codes must have shape {layout}, got {tuple(codes.shape)}")
    if codes.numel():
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or high >= size:
            raise ConfigError(f"codes must lie in [0, {size}), got values from {low} to {high}")
    return codes.long()


class VectorQuantizer(nn.Module):
    """One EMA-trained codebook of ``codebook_size`` vectors of size ``dim``.

    Args:
        dim: latent dimension D.
        codebook_size: number of codes N.
        decay: EMA decay in [0, 1) of the cluster sizes and sums (higher = slower).
        epsilon: Laplace smoothing of the cluster sizes (> 0).
        kmeans_init: initialise the codebook by k-means on the first training batch
            (if False, it starts as standard-normal vectors).
        kmeans_iters: Lloyd iterations of that k-means.
        dead_code_threshold: a code whose EMA cluster size (in vectors per batch) falls
            below this is restarted on a random vector of the current batch; 0 disables.

    Buffers: ``codebook [N, D]``, ``cluster_size [N]``, ``embed_sum [N, D]`` (float32)
    and ``initialized`` (bool scalar). Invariant: ``codebook ~= embed_sum / cluster_size``.

    Raises:
        ConfigError: an option out of range.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 2.0,
    ) -> None:
        super().__init__()
        if dim < 1 or codebook_size < 1:
            raise ConfigError(f"dim and codebook_size must be >= 1, got {dim} and {codebook_size}")
        if not 0.0 <= decay < 1.0 or epsilon <= 0 or kmeans_iters < 0 or dead_code_threshold < 0:
            raise ConfigError(
                f"need 0 <= decay < 1, epsilon > 0, kmeans_iters >= 0, dead_code_threshold >= 0; got "
                f"{decay}, {epsilon}, {kmeans_iters}, {dead_code_threshold}"
            )
        self.dim, self.codebook_size = dim, codebook_size
        self.decay, self.epsilon = decay, epsilon
        self.kmeans_iters, self.dead_code_threshold = kmeans_iters, dead_code_threshold
        codebook = torch.zeros(codebook_size, dim) if kmeans_init else torch.randn(codebook_size, dim)
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.full((codebook_size,), 0.0 if kmeans_init else 1.0))
        self.register_buffer("embed_sum", codebook.clone())
        self._norms: tuple[tuple, torch.Tensor] | None = None  # code_norms() cache, not state

    def code_norms(self) -> torch.Tensor:
        """float32 ``[N]`` squared norms of the codebook vectors, cached until the codebook changes."""
        book, key = self.codebook, (self.codebook.data_ptr(), self.codebook._version, self.codebook.device)
        if self._norms is None or self._norms[0] != key:
            self._norms = (key, book.float().pow(2).sum(1))
        return self._norms[1]

    @torch.no_grad()
    def init_codebook(self, flat: torch.Tensor) -> None:
        """k-means initialisation from float32 vectors ``flat [M, D]``; sets ``initialized``."""
        centroids, counts = kmeans(flat.float(), self.codebook_size, self.kmeans_iters)
        self.codebook.copy_(centroids)
        self.cluster_size.copy_(counts)
        self.embed_sum.copy_(centroids * counts[:, None])
        broadcast_from_rank0(self.codebook, self.cluster_size, self.embed_sum)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        counts = _histogram(codes, self.codebook_size)
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, flat)
        all_reduce_sum(counts, sums)  # statistics of the global batch under data parallelism
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        # a code no vector was ever assigned to (an empty k-means cluster) keeps its vector
        used = self.cluster_size[:, None] > 0
        self.codebook.copy_(torch.where(used, self.embed_sum / smoothed[:, None], self.codebook))

    @torch.no_grad()
    def _restart_dead_codes(self, flat: torch.Tensor) -> None:
        if self.dead_code_threshold <= 0:
            return
        m, n, dev = flat.shape[0], self.codebook_size, flat.device
        # one candidate per code (distinct vectors when the batch has enough); no host sync
        fresh = flat[torch.randperm(m, device=dev)[:n] if m >= n else torch.randint(m, (n,), device=dev)]
        broadcast_from_rank0(fresh)
        dead = self.cluster_size < self.dead_code_threshold
        self.codebook.copy_(torch.where(dead[:, None], fresh, self.codebook))
        self.cluster_size.masked_fill_(dead, self.dead_code_threshold)
        self.embed_sum.copy_(torch.where(dead[:, None], fresh * self.dead_code_threshold, self.embed_sum))

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize ``x [B, D, T]``; in training mode also update the codebook (init, EMA, restarts).

        Returns:
            ``(q, codes, commit_loss)``: the codebook vectors float32 ``[B, D, T]`` (no
            gradient, taken before this batch's update), int64 ``[B, T]``, and the float32
            scalar ``mean((x - sg(q))^2)`` (gradient flows to ``x``).
        """
        _check_latents(x, self.dim)
        batch, dim, frames = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            flat = x.detach().transpose(1, 2).reshape(-1, dim).float()
            if self.training and not bool(self.initialized):
                self.init_codebook(flat)
            codes = _nearest(flat, self.codebook.float())
            q = F.embedding(codes, self.codebook.float())
            if self.training:
                self._ema_update(flat, codes)
                self._restart_dead_codes(flat)
            q = q.view(batch, frames, dim).transpose(1, 2)
            commit_loss = F.mse_loss(x.float(), q)
        return q, codes.view(batch, frames), commit_loss

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize with a straight-through estimator: ``(quantized, codes, commit_loss)``.

        ``quantized`` has the dtype and shape of ``x`` and the value of the codebook
        vectors, with the gradient passed to ``x`` unchanged. See :meth:`quantize`.
        """
        q, codes, commit_loss = self.quantize(x)
        return x + (q.to(x.dtype) - x).detach(), codes, commit_loss

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes int64 ``[B, T]`` of latents ``x [B, D, T]`` (never changes the codebook)."""
        _check_latents(x, self.dim)
        with torch.autocast(device_type=x.device.type, enabled=False):
            flat = x.transpose(1, 2).reshape(-1, self.dim).float()
            return _nearest(flat, self.codebook.float(), self.code_norms()).view(x.shape[0], x.shape[2])

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """float32 ``[B, D, T]`` codebook vectors of ``codes`` int ``[B, T]`` in ``[0, N)``."""
        return self._lookup(_check_codes(codes, self.codebook_size, 2, "[B, T]"))

    def _lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.codebook.float()).transpose(1, 2)


class QuantizerOutput(NamedTuple):
    """What :meth:`ResidualVectorQuantizer.forward` returns."""

    quantized: torch.Tensor  #: ``[B, D, T]``, dtype of the input, straight-through
    codes: torch.Tensor  #: int64 ``[B, n_q, T]``
    commit_loss: torch.Tensor  #: float32 scalar, mean over the n_q quantizers used
    perplexity: torch.Tensor  #: float32 ``[n_q]``, exp(entropy) of each codebook's use in this batch


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> dict[str, list[float]]:
    """Per-codebook statistics of ``codes`` int ``[B, K, T]`` in ``[0, codebook_size)``.

    Returns:
        ``{"perplexity": [K floats], "dead_share": [K floats]}``: exp(entropy) of each
        codebook's code histogram (1 .. codebook_size) and the share of its codes that
        never occur (0 .. 1).

    Raises:
        ConfigError: wrong rank, dtype or out-of-range codes.
    """
    codes = _check_codes(codes, codebook_size, 3, "[B, K, T]")
    counts = torch.stack([_histogram(codes[:, k], codebook_size) for k in range(codes.shape[1])])
    return {
        "perplexity": _perplexity(counts).tolist(),
        "dead_share": (counts == 0).float().mean(1).tolist(),
    }


class ResidualVectorQuantizer(nn.Module):
    """K :class:`VectorQuantizer` applied to successive residuals (SoundStream, EnCodec).

    Args:
        dim: latent dimension D.
        num_codebooks: K.
        codebook_size: N codes per codebook (each code costs log2(N) bits).
        quantizer_dropout: probability that a training batch uses n_q ~ U{1..K}
            quantizers instead of K (True = 1.0, False = 0.0).
        decay, epsilon, kmeans_init, kmeans_iters, dead_code_threshold: passed to
            every :class:`VectorQuantizer`.

    Raises:
        ConfigError: an option out of range.
    """

    def __init__(
        self,
        dim: int,
        num_codebooks: int,
        codebook_size: int,
        quantizer_dropout: float | bool = False,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 2.0,
    ) -> None:
        super().__init__()
        dropout = float(quantizer_dropout)
        if num_codebooks < 1 or not 0.0 <= dropout <= 1.0:
            raise ConfigError(
                f"need num_codebooks >= 1 and 0 <= quantizer_dropout <= 1, got {num_codebooks}, {dropout}"
            )
        self.dim, self.num_codebooks, self.codebook_size = dim, num_codebooks, codebook_size
        self.quantizer_dropout = dropout
        opts = (decay, epsilon, kmeans_init, kmeans_iters, dead_code_threshold)
        self.layers = nn.ModuleList(VectorQuantizer(dim, codebook_size, *opts) for _ in range(num_codebooks))

    def _n_q(self, n_q: int | None) -> int:
        return codebook_count(n_q, self.num_codebooks)

    def forward(self, x: torch.Tensor, n_q: int | None = None) -> QuantizerOutput:
        """Quantize latents ``x [B, D, T]`` with the first ``n_q`` quantizers.

        ``n_q=None`` means K, or, in training with quantizer dropout, a random n_q per
        call. In training mode the codebooks are updated (see :class:`VectorQuantizer`).
        The commitment loss of quantizer k is ``mean((r_k - sg(q_k))^2)`` for its input
        residual ``r_k = x - sum_{j<k} sg(q_j)``; they are averaged.

        Raises:
            ConfigError: bad latents shape/dtype or ``n_q`` outside 1..K.
        """
        _check_latents(x, self.dim)
        n = self._n_q(n_q)
        if n_q is None and self.training and self.quantizer_dropout > 0:
            if float(torch.rand(())) < self.quantizer_dropout:
                n = int(torch.randint(1, self.num_codebooks + 1, (1,)))
            if world_size() > 1:  # one n_q for all ranks (no device sync without DDP)
                draw = torch.tensor(n, device=x.device)
                broadcast_from_rank0(draw)
                n = int(draw)
        residual = x.float()
        quantized = torch.zeros_like(residual)
        codes, losses, perplexity = [], [], []
        for layer in self.layers[:n]:
            q, layer_codes, loss = layer.quantize(residual)
            residual = residual - q
            quantized = quantized + q
            codes.append(layer_codes)
            losses.append(loss)
            perplexity.append(_perplexity(_histogram(layer_codes, self.codebook_size)))
        out = x + (quantized.to(x.dtype) - x).detach()
        return QuantizerOutput(
            out, torch.stack(codes, 1), torch.stack(losses).mean(), torch.stack(perplexity)
        )

    @torch.no_grad()
    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """Codes int64 ``[B, n_q, T]`` of latents ``x [B, D, T]`` (n_q defaults to K; no updates)."""
        _check_latents(x, self.dim)
        with torch.autocast(device_type=x.device.type, enabled=False):
            residual = x.transpose(1, 2).reshape(-1, self.dim).float()  # [B * T, D]
            codes = []
            for layer in self.layers[: self._n_q(n_q)]:
                codebook = layer.codebook.float()
                codes.append(_nearest(residual, codebook, layer.code_norms()))
                residual = residual - F.embedding(codes[-1], codebook)
        return torch.stack(codes, 1).view(x.shape[0], x.shape[2], -1).transpose(1, 2).contiguous()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """float32 latents ``[B, D, T]`` from codes int ``[B, n_q, T]``, 1 <= n_q <= K (fewer: coarser).

        Raises:
            ConfigError: wrong rank or dtype, n_q = 0 or > K, or codes outside [0, N).
        """
        codes, most = _check_codes(codes, self.codebook_size, 3, "[B, n_q, T]"), self.num_codebooks
        if not 1 <= codes.shape[1] <= most:
            raise ConfigError(f"codes have {codes.shape[1]} codebooks; this quantizer takes 1..{most}")
        return sum(layer._lookup(codes[:, k]) for k, layer in enumerate(self.layers[: codes.shape[1]]))

    def bitrate(self, frame_rate: float, n_q: int | None = None) -> float:
        """Bits per second ``n_q * frame_rate * log2(N)`` for ``frame_rate`` frames/s (n_q defaults to K)."""
        if not frame_rate > 0:
            raise ConfigError(f"frame_rate must be positive, got {frame_rate}")
        return self._n_q(n_q) * float(frame_rate) * math.log2(self.codebook_size)

    def codebook_usage(self, codes: torch.Tensor) -> dict[str, list[float]]:
        """:func:`codebook_usage` of ``codes [B, n_q, T]`` for this quantizer's N."""
        return codebook_usage(codes, self.codebook_size)

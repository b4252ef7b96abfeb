"""Pictures of the audio side (matplotlib, drawn on a given axes): log-mel spectrograms of audio and
codebook interleaving patterns as grids.

Both take a ``matplotlib.axes.Axes`` so that several can sit side by side in one figure (a
notebook cell, a model card); neither touches pyplot's global state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from notewave.audio.codec.losses import MelSpectrogram
from notewave.audio.lm.patterns import CodebookPattern
from notewave.core.io import atomic_path
from notewave.errors import AudioError, ConfigError

SPECTROGRAM_SCALE = (2048, 512, 128)  # n_fft, hop (samples), mel bands: the codec's coarsest mel scale


def log_mel_db(
    wav: Any, sample_rate: int, n_fft: int = 2048, hop: int = 512, n_mels: int = 128
) -> np.ndarray:
    """Log-mel spectrogram in dB of mono audio, as the codec's mel distance sees it.

    The mel filterbank and STFT are those of :class:`~notewave.audio.codec.losses.MelSpectrogram`
    (Hann window, centred frames, mel bands from 0 Hz to ``sample_rate / 2``), converted from
    natural log magnitude to dB (``20 * log10``), floor -100 dB.

    Args:
        wav: float audio ``[samples]``, ``[1, samples]`` or ``[1, 1, samples]`` (numpy or torch) in
            [-1, 1] at ``sample_rate`` Hz.
        sample_rate: Hz.
        n_fft, hop: STFT window and hop in samples; ``n_mels``: mel bands.

    Returns:
        float32 ``[n_mels, 1 + samples // hop]`` (dB re. magnitude 1; rows low to high frequency).

    Raises:
        AudioError: not mono, empty, or NaN/inf samples.
    """
    x = torch.as_tensor(np.asarray(wav) if not isinstance(wav, torch.Tensor) else wav).float().cpu()
    if (x.dim() > 1 and int(np.prod(x.shape[:-1])) != 1) or x.shape[-1] == 0:
        raise AudioError(f"a spectrogram needs mono audio [samples] or [1, samples], got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise AudioError("the waveform contains NaN or infinite samples")
    with torch.no_grad():
        mel = MelSpectrogram(int(sample_rate), n_fft, hop, n_mels)(x.reshape(1, 1, -1))[0]
    return (mel * (20.0 / np.log(10.0))).numpy().astype(np.float32)


def draw_spectrogram(
    ax: Any, wav: Any, sample_rate: int, title: str = "", vmin: float = -80.0, vmax: float = 10.0
) -> Any:
    """Draw the log-mel spectrogram (:func:`log_mel_db`, :data:`SPECTROGRAM_SCALE`) of mono ``wav`` on ``ax``.

    x: time in seconds, y: mel band (0 Hz at the bottom, ``sample_rate / 2`` at the top; the
    ticks give their centre frequencies in Hz), colour: dB clipped to ``[vmin, vmax]``, so that
    spectrograms drawn side by side share one scale.

    Returns:
        The ``AxesImage`` (pass it to ``fig.colorbar``).

    Raises:
        AudioError: see :func:`log_mel_db`.
    """
    import librosa

    n_fft, hop, n_mels = SPECTROGRAM_SCALE
    spec = log_mel_db(wav, sample_rate, n_fft, hop, n_mels)
    seconds = spec.shape[1] * hop / sample_rate
    image = ax.imshow(
        spec, origin="lower", aspect="auto", interpolation="nearest", cmap="magma",
        extent=(0.0, seconds, -0.5, n_mels - 0.5), vmin=vmin, vmax=vmax,
    )  # fmt: skip
    centres = librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=sample_rate / 2)[1:-1]
    rows = np.linspace(0, n_mels - 1, 5).round().astype(int)
    ax.set_yticks(rows, [f"{centres[r]:.0f}" for r in rows])
    ax.set(xlabel="time (s)", ylabel="mel band centre (Hz)", title=title)
    return image


def draw_pattern(ax: Any, pattern: CodebookPattern, num_frames: int, title: str | None = None) -> Any:
    """Draw ``pattern``'s layout for ``num_frames`` frames as a grid: decoding steps across, codebooks down.

    Each cell ``(codebook k, step s)`` that holds a code is coloured and labelled with the frame
    ``t`` it carries (:meth:`~notewave.audio.lm.patterns.CodebookPattern.step_positions`); empty
    cells (the "empty" special token) are left light grey. The colour is the frame, so one frame's
    K codes are easy to follow across steps (Copet et al. 2023, MusicGen, fig. 1).

    Args:
        ax: a ``matplotlib.axes.Axes``.
        pattern: e.g. :func:`~notewave.audio.lm.patterns.get_pattern` ``("delay", 4)``.
        num_frames: T (>= 1); keep it small (under ~12) so the labels stay readable.
        title: default ``"<name>: S steps for T frames x K codebooks"``.

    Returns:
        ``ax``; its ``texts`` hold one label per code (K * T of them).

    Raises:
        ConfigError: ``num_frames`` is not a positive int.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ConfigError(f"num_frames must be a positive int, got {num_frames!r}")
    layout = pattern.step_positions(num_frames).numpy()  # [K, S], -1 where empty
    k, steps = layout.shape
    shown = np.ma.masked_less(layout, 0).astype(float)
    ax.set_facecolor("0.92")
    ax.imshow(shown, cmap="viridis", vmin=0, vmax=max(1, num_frames - 1), aspect="auto", alpha=0.55)
    for book, step in zip(*np.nonzero(layout >= 0)):
        ax.text(step, book, str(layout[book, step]), ha="center", va="center", fontsize=8)
    ax.set_xticks(np.arange(-0.5, steps, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, k, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_yticks(range(k), [f"k={i}" for i in range(k)])
    ax.set_xlabel("decoding step s")
    ax.set_title(title or f"{pattern.name}: {steps} steps for {num_frames} frames x {k} codebooks")
    return ax


def save_spectrograms(
    panels: Sequence[tuple[str, Any]], sample_rate: int, path: str | os.PathLike[str], width: float = 5.5
) -> Path:
    """Write ``(title, mono audio)`` panels side by side on one dB scale (:func:`draw_spectrogram`)
    with a shared colour bar to a PNG, atomically; ``width``: inches per panel. Returns the path.

    Raises:
        AudioError: see :func:`log_mel_db`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # not pyplot: the caller's backend is left alone

    fig = Figure(figsize=(width * len(panels), 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, (title, wav) in zip(axes, panels):
        image = draw_spectrogram(ax, np.asarray(wav, dtype=np.float32).reshape(-1), sample_rate, title)
    fig.colorbar(image, ax=list(axes), label="dB")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, bbox_inches="tight", format="png")
    return Path(path)

"""Piano-roll pictures of scores (matplotlib): drawn on a given axes, or saved atomically as PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from symusic import Score

from notewave.core.io import atomic_path

TRACK_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink")


def draw_piano_roll(
    ax: Any, score: Score, mark_tick: int | None = None, title: str | None = None, legend: bool = True
) -> Any:
    """Draw every note of ``score`` on the matplotlib axes ``ax`` as a bar (x: beats, y: MIDI pitch).

    One colour per track (:data:`TRACK_COLOURS`; matplotlib's ``tab20`` for more than 7 tracks,
    cycled past 20), drum notes at their GM drum key. Use it to put several scores side by side
    (``fig.subplots(1, 3)``); :func:`plot_piano_roll` saves one.

    Args:
        ax: a ``matplotlib.axes.Axes``.
        score: the score (any ticks per quarter; ``"tick"`` time unit).
        mark_tick: draw a dashed vertical line here (e.g. where a continuation starts), in ticks.
        title: axes title (default ``"piano roll"``).
        legend: label the tracks (track name, else ``program P``).

    Returns:
        ``ax``; the notes of one pitch in one track form one collection (one path per note).
    """
    tpq = score.ticks_per_quarter
    colours: Sequence[Any] = TRACK_COLOURS
    if len(score.tracks) > len(TRACK_COLOURS):  # a band: matplotlib's 20 categorical colours
        from matplotlib import colormaps

        colours = colormaps["tab20"].colors
    for index, track in enumerate(score.tracks):
        colour = colours[index % len(colours)]
        rows: dict[int, list[tuple[float, float]]] = {}
        for note in track.notes:
            rows.setdefault(note.pitch, []).append((note.time / tpq, note.duration / tpq))
        for pitch, spans in rows.items():  # one collection per (track, pitch): fast for long scores
            ax.broken_barh(spans, (pitch - 0.4, 0.8), facecolors=colour)
        ax.plot([], [], color=colour, linewidth=6, label=track.name or f"program {track.program}")
    if mark_tick is not None:
        ax.axvline(mark_tick / tpq, color="black", linestyle="--", linewidth=1, label="continuation")
    ax.set_xlabel("beats (quarter notes)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title or "piano roll")
    if legend:
        ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_piano_roll(
    score: Score, path: str | os.PathLike[str], mark_tick: int | None = None, title: str | None = None
) -> Path:
    """Draw every note as a bar (:func:`draw_piano_roll`) and save a 12 x 4.5 inch PNG atomically.

    Args:
        score: the score (any ticks per quarter).
        path: output ``.png`` file.
        mark_tick: draw a vertical line here (e.g. where a continuation starts), in ticks.
        title: figure title.

    Returns:
        The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    draw_piano_roll(fig.add_subplot(1, 1, 1), score, mark_tick, title)
    fig.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    return target

"""Piano-roll pictures of scores (matplotlib, written atomically as PNG)."""

from __future__ import annotations

import os
from pathlib import Path

from symusic import Score

from notewave.core.io import atomic_path


def plot_piano_roll(
    score: Score, path: str | os.PathLike[str], mark_tick: int | None = None, title: str | None = None
) -> Path:
    """Draw every note as a bar (x: beats, y: MIDI pitch, one colour per track) and save a PNG.

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

    tpq = score.ticks_per_quarter
    fig = Figure(figsize=(12, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink"]
    for index, track in enumerate(score.tracks):
        colour = colours[index % len(colours)]
        bars = [(n.time / tpq, n.duration / tpq) for n in track.notes]
        for (start, length), note in zip(bars, track.notes):
            ax.broken_barh([(start, length)], (note.pitch - 0.4, 0.8), facecolors=colour)
        ax.plot([], [], color=colour, linewidth=6, label=track.name or f"program {track.program}")
    if mark_tick is not None:
        ax.axvline(mark_tick / tpq, color="black", linestyle="--", linewidth=1, label="continuation")
    ax.set_xlabel("beats (quarter notes)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title or "piano roll")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    return target

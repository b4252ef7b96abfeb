"""Results, pictures and files of the hybrid pipelines: the result types, piano roll and
spectrograms on one time axis in seconds, and the atomic writing of every output (MIDI, WAV, PNG,
JSON report) into a folder.

Figures are ``matplotlib.figure.Figure`` objects on the Agg canvas (no pyplot state), drawn with
:func:`notewave.symbolic.plot.draw_piano_roll` and :func:`notewave.audio.plot.draw_spectrogram`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from symusic import Note, Score, Track

from notewave.core.io import atomic_open, atomic_path

MS_PER_SECOND = 1000


@dataclass
class AudioPanel:
    """One waveform to draw as a spectrogram: float32 ``wav`` ``[channels, samples]`` at ``sample_rate``
    Hz, starting ``offset`` seconds into the piece."""

    title: str
    wav: np.ndarray
    sample_rate: int
    offset: float = 0.0


def score_in_seconds(score: Score) -> Score:
    """A copy of a tick-based ``score`` whose ticks are milliseconds (1000 ticks per quarter, no
    tempo), so that a piano roll drawn in quarter notes is drawn in seconds. Tracks with notes only."""
    timed = score.to("second")
    out = Score(MS_PER_SECOND)
    for track in timed.tracks:
        if not len(track.notes):
            continue
        a = track.notes.numpy()
        copy = Track(name=track.name, program=track.program, is_drum=track.is_drum)
        copy.notes = Note.from_numpy(
            time=np.round(a["time"] * MS_PER_SECOND).astype(np.int32),
            duration=np.maximum(1, np.round(a["duration"] * MS_PER_SECOND)).astype(np.int32),
            pitch=a["pitch"],
            velocity=a["velocity"],
        )
        out.tracks.append(copy)
    return out


def _mark(ax: Any, new_span: tuple[float, float] | None, seam: float | None, roll: bool) -> None:
    """Shade the new bars (grey on a piano roll, a white frame on a spectrogram) and draw the seam."""
    if new_span is not None and roll:
        ax.axvspan(*new_span, color="0.5", alpha=0.15, label="new bars")
    elif new_span is not None:
        for edge in new_span:
            ax.axvline(edge, color="white", linewidth=1.0, alpha=0.8)
    if seam is not None:
        ax.axvline(
            seam,
            color="black" if roll else "cyan",
            linestyle="--",
            linewidth=1.2,
            label="seam" if roll else None,
        )


def draw_roll(
    ax: Any,
    score: Score,
    new_span: tuple[float, float] | None,
    title: str,
    seam: float | None = None,
    legend_outside: bool = True,
) -> Any:
    """Piano roll of ``score`` on ``ax`` in seconds (x) and MIDI pitch (y), new bars shaded; the
    legend (tracks, new bars, seam) right of the axes, or inside it at the top left."""
    from notewave.symbolic.plot import draw_piano_roll

    draw_piano_roll(ax, score_in_seconds(score), title=title, legend=False)
    ax.set_xlabel("time (s)")
    _mark(ax, new_span, seam, roll=True)
    columns = 1 + len(score.tracks) // (13 if legend_outside else 4)
    where = {"loc": "upper left", "bbox_to_anchor": (1.0, 1.0)} if legend_outside else {"loc": "upper left"}
    ax.legend(**where, fontsize=7, ncol=columns, framealpha=0.85)
    return ax


def draw_audio(ax: Any, panel: AudioPanel, new_span: tuple[float, float] | None, seam: float | None) -> Any:
    """Log-mel spectrogram of ``panel`` on ``ax``, placed at its offset on the piece's time axis."""
    from notewave.audio.plot import draw_spectrogram

    mono = panel.wav.mean(axis=0) if panel.wav.ndim == 2 else panel.wav
    image = draw_spectrogram(ax, mono, panel.sample_rate, title=panel.title)
    left, right, bottom, top = image.get_extent()
    image.set_extent((left + panel.offset, right + panel.offset, bottom, top))
    _mark(ax, new_span, seam, roll=False)
    return image


def _figure(rows: int, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, height * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def piano_roll_figure(
    score: Score, new_span: tuple[float, float] | None, title: str, seam: float | None = None
) -> Any:
    """A one-axes ``Figure``: :func:`draw_roll`."""
    fig = _figure(1, 4.0)
    draw_roll(fig.add_subplot(1, 1, 1), score, new_span, title, seam)
    return fig


def spectrogram_figure(
    panels: Sequence[AudioPanel], new_span: tuple[float, float] | None, seam: float | None = None
) -> Any:
    """A ``Figure`` with one spectrogram per panel (time in seconds of the piece, one dB scale)."""
    fig = _figure(len(panels), 2.6)
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]  # each on its own span of the piece
    image = None
    for ax, panel in zip(axes, panels):
        image = draw_audio(ax, panel, new_span, seam)
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="dB")
    return fig


def overview_figure(
    score: Score,
    new_span: tuple[float, float] | None,
    panels: Sequence[AudioPanel],
    title: str,
    seam: float | None = None,
) -> Any:
    """Piano roll above the spectrograms, one time axis in seconds: the notes and the sounds they became."""
    fig = _figure(1 + len(panels), 2.6)
    axes = fig.subplots(1 + len(panels), 1, sharex=True, squeeze=False)[:, 0]
    draw_roll(axes[0], score, new_span, title, seam, legend_outside=False)
    image = None
    for ax, panel in zip(axes[1:], panels):
        image = draw_audio(ax, panel, new_span, seam)
    for ax in axes[:-1]:
        ax.set_xlabel("")  # one time axis: labelled once, at the bottom
    if image is not None:
        fig.colorbar(image, ax=list(axes[1:]), label="dB")
    return fig


@dataclass
class ComposeResult:
    """What :func:`compose` made (arrays float32 ``[1, samples]`` at ``sample_rate`` Hz).

    Attributes:
        score: the composition as written (sketch + new bars, ended on its last bar line).
        new_span: seconds ``(start, end)`` of the new bars.
        fluidsynth: FluidSynth render of the whole composition (``None`` with ``audio="lm"``).
        lm_audio: the audio LM's audio of ``lm_window`` (``None`` with ``audio="fluidsynth"``).
        lm_window: seconds ``(start, end)`` of the composition that ``lm_audio`` plays.
        melody: the LM's melody condition float32 ``[12, frames]`` (one-hot chroma of the notes).
        report: the JSON report; paths: key -> written file (empty without ``out_dir``).
    """

    score: Score
    new_span: tuple[float, float]
    sample_rate: int
    fluidsynth: np.ndarray | None
    lm_audio: np.ndarray | None
    lm_window: tuple[float, float] | None
    melody: np.ndarray | None
    report: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)

    def panels(self) -> list[AudioPanel]:
        """The audio to draw: FluidSynth from 0 s, the LM from the start of its window."""
        out = []
        if self.fluidsynth is not None:
            out.append(AudioPanel("FluidSynth render", self.fluidsynth, self.sample_rate))
        if self.lm_audio is not None and self.lm_window is not None:
            out.append(
                AudioPanel("audio LM (melody + CFG)", self.lm_audio, self.sample_rate, self.lm_window[0])
            )
        return out

    def figure(self) -> Any:
        """Piano roll over the spectrograms on one time axis (a matplotlib ``Figure``)."""
        title = f"{self.report['sketch']}: {self.report['mode']}, new bars shaded"
        return overview_figure(self.score, self.new_span, self.panels(), title)


@dataclass
class ContinueAudioResult:
    """What :func:`continue_audio` made (arrays float32 ``[1, samples]`` at ``sample_rate`` Hz).

    Attributes:
        recording: the recording, mono at ``sample_rate``.
        transcription: its notes (one track, 120 BPM, 4/4).
        score: transcription + continuation as written (ended on the last bar line).
        new_span: seconds ``(start, end)`` of the continuation's bars.
        fluidsynth: the recording, then the FluidSynth render of the continuation (joined at
            ``seams[0]``); lm_audio: the recording, then the audio LM's continuation (``seams[1]``).
        seams: seconds where each continuation takes over (``None`` for audio not made).
        melody: the LM's melody condition float32 ``[12, frames]`` over the whole LM output.
        report: the JSON report; paths: key -> written file (empty without ``out_dir``).
    """

    recording: np.ndarray
    transcription: Score
    score: Score
    new_span: tuple[float, float]
    sample_rate: int
    fluidsynth: np.ndarray | None
    lm_audio: np.ndarray | None
    seams: tuple[float | None, float | None]
    melody: np.ndarray | None
    report: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)

    def panels(self) -> list[AudioPanel]:
        """The joined audio to draw, both from 0 s."""
        out = []
        if self.fluidsynth is not None:
            out.append(AudioPanel("recording + FluidSynth continuation", self.fluidsynth, self.sample_rate))
        if self.lm_audio is not None:
            out.append(AudioPanel("recording + audio LM continuation", self.lm_audio, self.sample_rate))
        return out

    def figure(self) -> Any:
        """Piano roll of the transcription and continuation over the spectrograms (a ``Figure``)."""
        title = f"{self.report['recording']}: transcription + {self.report['bars']['new']} bars"
        return overview_figure(self.score, self.new_span, self.panels(), title, self.seams[0])


def write_outputs(
    out_dir: str | os.PathLike[str],
    midis: dict[str, tuple[str, Score]],
    wavs: dict[str, tuple[str, np.ndarray, int]],
    figures: dict[str, tuple[str, Any]],
    report: dict[str, Any],
) -> dict[str, Path]:
    """Write every output into ``out_dir`` (created when missing), each file atomically (temporary
    file beside it, then renamed): MIDI, then WAV (16-bit PCM), then PNG, then ``report.json``
    last, which lists them all under ``"files"``.

    Args:
        midis: key -> (file name, Score); wavs: key -> (file name, float32 ``[channels, samples]``,
            rate in Hz); figures: key -> (file name, matplotlib Figure); report: JSON-ready dict.

    Returns:
        key -> written path (``"report"`` included).
    """
    from notewave.bridge.render import write_wav
    from notewave.core.midi import save_score

    folder = Path(out_dir)
    paths: dict[str, Path] = {}
    for key, (name, score) in midis.items():
        paths[key] = save_score(score, folder / name)
    for key, (name, wav, rate) in wavs.items():
        paths[key] = write_wav(folder / name, wav, rate)
    for key, (name, fig) in figures.items():
        with atomic_path(folder / name) as tmp:
            fig.savefig(tmp, format="png")
        paths[key] = folder / name
    report["files"] = {key: path.name for key, path in paths.items()}
    paths["report"] = folder / "report.json"
    with atomic_open(paths["report"]) as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    return paths

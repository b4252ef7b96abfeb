"""Round trip MIDI -> render -> transcription -> note F1 against the MIDI (``notewave eval roundtrip``,
``bench/roundtrip.py``).

Pieces: held-out files the shipped transcriber never trained on (:func:`heldout_pieces`), by default
the JSB test chorales (``data/jsb/test``). Each piece is cut to its first ``seconds`` (the notes
that start before that time, kept whole: :func:`excerpt`), rendered at :data:`RENDER_RATE` Hz mono
(0.5 s tail, no level normalisation) by one of :data:`ENGINES`: FluidSynth with a SoundFont
(:func:`notewave.bridge.render.render_midi`) or TiMidity++ with its Freepats patches
(:func:`notewave.bridge.timidity.render_timidity`, an engine no transcriber trains on), transcribed
with the polyphonic transcriber (:func:`notewave.bridge.transcription.transcribe.transcribe`) and
scored against the excerpt's own non-drum notes: drum tracks are rendered but are no reference notes.

Metric: note precision, recall and F1 of ``mir_eval.transcription.precision_recall_f1_overlap``
(Raffel et al. 2014, "mir_eval", ISMIR), through
:func:`notewave.bridge.transcription.train.note_f1`: an estimated note matches a reference note
of the same pitch (within 50 cents) whose onset is within 50 ms; "onset F1" ignores offsets, "F1
with offsets" also needs the offset within 20 % of the reference note's duration or 50 ms,
whichever is larger. Each reference note matches at most one estimated note, so the F1 with
offsets is never above the onset F1. Means are over pieces (each piece weighs the same).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from symusic import Score
from tqdm import tqdm

from notewave.errors import ConfigError, DataError, RenderError
from notewave.paths import JSB_MIDI_DIR

PathLike = str | os.PathLike[str]
RENDER_RATE = 22050  # Hz: the renders of the round trip (the transcriber resamples to its own rate)
TAIL_SECONDS = 0.5  # rendered after the excerpt's last note-off
DEFAULT_PIECES = 8
DEFAULT_SECONDS = 20.0
HELDOUT_SPLITS = ("test", "valid")  # folder names of splits no transcriber trains on
ENGINES = ("fluidsynth", "timidity")  # synthesis engines of the renders


# ---- choosing pieces ---------------------------------------------------------------------
def _heldout_files(folder: Path) -> list[Path]:
    """Held-out MIDI files of one folder (rules in :func:`heldout_pieces`)."""
    from notewave.symbolic.data import midi_files
    from notewave.symbolic.train import split_folder

    if (folder / "test").is_dir():
        return midi_files(folder / "test")
    if folder.name in HELDOUT_SPLITS:
        return midi_files(folder)
    return split_folder(folder)[1]


def heldout_pieces(folders: Sequence[PathLike] | None = None, pieces: int = DEFAULT_PIECES) -> list[Path]:
    """The first ``pieces`` held-out MIDI files (sorted by path) of each folder.

    Held out means never trained on by ``notewave train transcriber`` (which reads ``train/``, or
    every file but each 20th of a flat folder, and refuses the JSB test split): a folder with a
    ``test/`` sub-folder gives its test files; a folder named ``test`` or ``valid`` (a split)
    gives its own files; a folder with ``train/`` gives its ``valid/`` files; any other folder
    every 20th file by sorted path (files 20, 40, ...). Default folder: ``data/jsb/test``.

    Raises:
        ConfigError: ``pieces`` < 1.
        DataError: a missing folder, one without MIDI files, or one without held-out files.
    """
    if not isinstance(pieces, int) or pieces < 1:
        raise ConfigError(f"pieces must be a whole number >= 1 (pieces per folder), got {pieces!r}")
    chosen: list[Path] = []
    for folder in [Path(f) for f in folders] if folders else [JSB_MIDI_DIR / "test"]:
        files = _heldout_files(folder)
        if not files:
            raise DataError(
                f"{folder}: no held-out MIDI files (a test/ or valid/ split, or every 20th file of a "
                "flat folder, which needs 20 files or more)"
            )
        chosen += files[:pieces]
    return chosen


# ---- one piece ---------------------------------------------------------------------------
def excerpt(midi: PathLike | bytes | Score, seconds: float | None, program: int | None = None) -> Score:
    """The score of ``midi`` in seconds (symusic ``Score`` with ``"second"`` time unit), its notes that
    start before ``seconds`` kept whole (``None``: every note); with ``program`` (General MIDI
    0..127) every non-drum track is set to that program.

    Raises:
        MidiError: unreadable MIDI or no notes (the message names the file).
        ConfigError: ``seconds`` not > 0, ``program`` outside 0..127.
    """
    from notewave.core.midi import load_score

    if seconds is not None and not (isinstance(seconds, (int, float)) and 0 < seconds < math.inf):
        raise ConfigError(f"seconds must be > 0 (the excerpt's length in seconds), got {seconds!r}")
    if program is not None and not (isinstance(program, int) and 0 <= program <= 127):
        raise ConfigError(f"program must be a General MIDI program 0..127, got {program!r}")
    score = load_score(midi).to("second")
    if seconds is not None:
        score = score.clip(0.0, float(seconds), clip_end=False)
    for track in score.tracks:
        if program is not None and not track.is_drum:
            track.program = program
    return score


def note_rows(score: Score) -> np.ndarray:
    """Non-drum notes of ``score`` as float64 rows ``[start_s, end_s, midi_pitch]`` ``[n, 3]``, sorted."""
    sec = score.to("second")
    rows = sorted((n.time, n.end, n.pitch) for t in sec.tracks if not t.is_drum for n in t.notes)
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


@dataclass(frozen=True)
class NoteScores:
    """Note precision, recall and F1 in [0, 1]: onset only (50 ms) and with offsets (module docstring)."""

    precision: float
    recall: float
    f1: float
    precision_with_offsets: float
    recall_with_offsets: float
    f1_with_offsets: float

    @classmethod
    def mean(cls, items: Sequence[NoteScores]) -> NoteScores:
        """The field-wise mean of ``items`` (NaN fields when empty)."""
        values = np.array([list(asdict(s).values()) for s in items], dtype=np.float64).reshape(-1, 6)
        means = values.mean(axis=0) if len(values) else np.full(6, np.nan)
        return cls(*(float(v) for v in means))


def score_notes(reference: Score | np.ndarray, estimate: Score | np.ndarray | Sequence[Any]) -> NoteScores:
    """Score an estimated transcription against reference notes with mir_eval (see the module docstring).

    Args:
        reference: a ``Score`` (non-drum notes count) or float rows ``[n, >=3]``: start s, end s, MIDI pitch.
        estimate: the same kinds, or a list of
            :class:`~notewave.bridge.transcription.notes.NoteEvent`.

    Returns:
        :class:`NoteScores`; with no reference or no estimated notes every value is 1.0 when both are
        empty, else 0.0.

    Raises:
        ConfigError: note rows that are not finite ``[n, >=3]``.
    """
    from notewave.bridge.transcription.notes import NoteEvent
    from notewave.bridge.transcription.train import note_f1

    def rows(notes: Score | np.ndarray, name: str) -> np.ndarray:
        arr = note_rows(notes) if isinstance(notes, Score) else np.asarray(notes, dtype=np.float64)
        arr = arr.reshape(0, 3) if arr.size == 0 else arr
        if arr.ndim != 2 or arr.shape[1] < 3 or not np.isfinite(arr).all():
            raise ConfigError(f"{name} notes must be finite rows [start_s, end_s, pitch], got {arr.shape}")
        return arr

    ref = rows(reference, "reference")
    if isinstance(estimate, np.ndarray):
        est = rows(estimate, "estimated")
        estimate = [NoteEvent(float(s), float(e), int(p), 80) for s, e, p in est[:, :3]]
    onset, both = note_f1(ref, estimate), note_f1(ref, estimate, with_offsets=True)
    return NoteScores(*(float(v) for v in (*onset, *both)))


@dataclass(frozen=True)
class PieceResult:
    """One piece's round trip: its file, audio length (s), note counts, scores, transcription time (s)."""

    piece: str
    audio_seconds: float
    reference_notes: int
    transcribed_notes: int
    scores: NoteScores
    transcribe_seconds: float

    @property
    def real_time_factor(self) -> float:
        """Seconds of audio transcribed per second of wall time (x real time)."""
        return self.audio_seconds / max(self.transcribe_seconds, 1e-9)


@dataclass
class Roundtrip:
    """Everything of one round trip, for pictures and listening: ``reference`` (the excerpt, seconds),
    ``transcription`` (the transcriber's ``Score``), ``audio`` float32 ``[1, samples]`` at
    ``sample_rate`` Hz, and the scored :class:`PieceResult`."""

    result: PieceResult
    reference: Score
    transcription: Score
    audio: np.ndarray
    sample_rate: int


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, got {engine!r}")


def render_excerpt(
    reference: Score,
    engine: str = "fluidsynth",
    soundfont: PathLike | None = None,
    sample_rate: int = RENDER_RATE,
) -> tuple[np.ndarray, int]:
    """Render ``reference`` (drum tracks included) with ``engine`` at ``sample_rate`` Hz, 0.5 s tail, no
    level normalisation: float32 ``[1, samples]`` and the rate. ``soundfont``: the ``.sf2``/``.sf3``
    (FluidSynth) or TiMidity ``.cfg`` (default Freepats) file. Raises ConfigError, RenderError,
    SoundfontError, MidiError."""
    _check_engine(engine)
    if engine == "timidity":
        from notewave.bridge.timidity import render_timidity

        return render_timidity(reference, sample_rate, soundfont, tail_seconds=TAIL_SECONDS, normalize=None)
    from notewave.bridge.render import render_midi

    return render_midi(reference, sample_rate, soundfont=soundfont, tail_seconds=TAIL_SECONDS)


def roundtrip_piece(
    midi: PathLike | bytes | Score,
    seconds: float | None = DEFAULT_SECONDS,
    soundfont: PathLike | None = None,
    checkpoint: PathLike | None = None,
    program: int | None = None,
    sample_rate: int = RENDER_RATE,
    engine: str = "fluidsynth",
) -> Roundtrip:
    """Render the first ``seconds`` of ``midi`` with ``engine``, transcribe it and score the notes.

    Args:
        midi: a MIDI path, MIDI bytes or a ``Score``; seconds, program: see :func:`excerpt`.
        soundfont: FluidSynth: ``.sf2``/``.sf3`` path (default
            :func:`~notewave.bridge.soundfont.find_soundfont`); TiMidity: a ``.cfg`` (default Freepats).
        checkpoint: transcriber folder (default ``data/checkpoints/transcriber``).
        sample_rate: render rate in Hz (the transcriber resamples to its own).
        engine: ``"fluidsynth"`` or ``"timidity"`` (:data:`ENGINES`).

    Raises:
        MidiError, SoundfontError, RenderError, CheckpointError, ConfigError: from the excerpt, the
        render or the transcriber (one line, naming the file).
    """
    from notewave.bridge.transcription.transcribe import load_transcriber, transcribe
    from notewave.core.midi import midi_name

    _check_engine(engine)
    reference = excerpt(midi, seconds, program)
    wav, rate = render_excerpt(reference, engine, soundfont, sample_rate)
    load_transcriber(checkpoint)  # loaded (and cached) outside the timing
    start = time.perf_counter()
    estimate = transcribe(wav, rate, checkpoint=checkpoint)
    took = time.perf_counter() - start
    result = PieceResult(
        piece=midi_name(midi),
        audio_seconds=wav.shape[1] / rate,
        reference_notes=len(note_rows(reference)),
        transcribed_notes=estimate.note_num(),
        scores=score_notes(reference, estimate),
        transcribe_seconds=took,
    )
    return Roundtrip(result, reference, estimate, wav, rate)


# ---- many pieces -------------------------------------------------------------------------
@dataclass
class RoundtripReport:
    """Per-piece results and their mean, with what produced them (``seconds`` None: whole pieces;
    ``soundfont``: the SoundFont of FluidSynth or the config of TiMidity, as ``engine`` says)."""

    pieces: list[PieceResult]
    seconds: float | None
    soundfont: str
    checkpoint: str
    sample_rate: int = RENDER_RATE
    program: int | None = None
    wall_seconds: float = 0.0
    engine: str = "fluidsynth"
    mean: NoteScores = field(init=False)

    def __post_init__(self) -> None:
        self.mean = NoteScores.mean([p.scores for p in self.pieces])

    def table(self) -> str:
        """A Markdown table: one row per piece, then the mean over pieces."""
        lines = [
            "| piece | audio s | notes | transcribed | onset P | onset R | onset F1 | F1 w/ offsets | x RT |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for p in self.pieces:
            s = p.scores
            lines.append(
                f"| {Path(p.piece).name} | {p.audio_seconds:.1f} | {p.reference_notes} | "
                f"{p.transcribed_notes} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | "
                f"{s.f1_with_offsets:.3f} | {p.real_time_factor:.0f} |"
            )
        m = self.mean
        lines.append(
            f"| mean of {len(self.pieces)} | | | | {m.precision:.3f} | {m.recall:.3f} | **{m.f1:.3f}** | "
            f"{m.f1_with_offsets:.3f} | |"
        )
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: settings, ``pieces`` (each with ``scores``) and ``mean``."""
        return asdict(self)

    def write_json(self, path: PathLike) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` atomically; returns the path."""
        from notewave.core.io import atomic_open

        with atomic_open(path) as handle:
            json.dump(self.to_dict(), handle, indent=2)
        return Path(path)


def evaluate_roundtrip(
    pieces: Sequence[PathLike],
    seconds: float | None = DEFAULT_SECONDS,
    soundfont: PathLike | None = None,
    checkpoint: PathLike | None = None,
    program: int | None = None,
    progress: bool = True,
    engine: str = "fluidsynth",
) -> RoundtripReport:
    """:func:`roundtrip_piece` for every piece (a tqdm bar over pieces) and the mean scores.

    The engine, SoundFont (FluidSynth) or config and binary (TiMidity), the checkpoint and the options
    are checked before the first render.

    Raises:
        DataError: no pieces. SoundfontError, CheckpointError, ConfigError, MidiError, RenderError:
            see :func:`roundtrip_piece` (the first failing piece ends the run); RenderError when
            ``timidity`` or its config is missing.
    """
    from notewave.bridge.soundfont import find_soundfont
    from notewave.bridge.transcription.transcribe import load_transcriber
    from notewave.paths import DEFAULT_TRANSCRIBER_CHECKPOINT

    if not pieces:
        raise DataError("no pieces to evaluate: give at least one MIDI file")
    if seconds is not None and not (isinstance(seconds, (int, float)) and 0 < seconds < math.inf):
        raise ConfigError(f"seconds must be > 0 (the excerpt's length in seconds), got {seconds!r}")
    _check_engine(engine)
    if engine == "timidity":
        from notewave.bridge.timidity import DEFAULT_CONFIG, INSTALL_HINT, timidity_binary

        timidity_binary()
        font = Path(soundfont) if soundfont is not None else DEFAULT_CONFIG
        if not font.is_file():
            raise RenderError(f"TiMidity config {str(font)!r} not found; {INSTALL_HINT}")
    else:
        font = find_soundfont(soundfont)
    load_transcriber(checkpoint)
    started = time.perf_counter()
    results = [
        roundtrip_piece(p, seconds, font, checkpoint, program, engine=engine).result
        for p in tqdm(list(pieces), desc="round trip", unit="piece", disable=not progress)
    ]
    return RoundtripReport(
        pieces=results,
        seconds=None if seconds is None else float(seconds),
        soundfont=str(font),
        checkpoint=str(checkpoint if checkpoint is not None else DEFAULT_TRANSCRIBER_CHECKPOINT),
        program=program,
        wall_seconds=time.perf_counter() - started,
        engine=engine,
    )

"""MuseScore 3 as a notation client: import MIDI as a composer does, read back the score.

:func:`import_with_musescore` runs ``mscore3 -j job.json`` headless (jobs ``{"in": MIDI, "out":
X.musicxml}``; MuseScore 3 command-line options: https://musescore.org/en/handbook/3/command-line-options)
and parses the uncompressed MusicXML with :mod:`xml.etree.ElementTree`.

MuseScore 3's MIDI import (``mscore/importmidi/importmidi.cpp``, 3.2.3 in Debian 12) turns ticks
into its 480 per quarter as ``(tick * 480 + tpq // 2) // tpq`` (onset and length apart), lengthens
notes to at least 15 of them (a 128th) and makes measures up to the latest note-off, before it
quantizes: a note-off past the last bar line after that rounding (1 tick at 480 tpq), or a note
starting less than a 128th before it, adds an (empty) measure; tempo, meter, controller, marker
and end-of-track events add none; bars after the last note are left out; a first bar twice as long
as the next (4/4, 2/4) is split when no note is at tick 0. :func:`finish_at_bar` ends a score where
MuseScore will end it, :func:`musescore_bar_count` predicts MuseScore's count. Adjacent tracks
sharing a channel and a piano/organ/synth program become one part; symusic gives each track its own
channel (drums: 10).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from symusic import Note, Score

from notewave.core.midi import bar_grid
from notewave.errors import ConfigError, MidiError, NotationError

MUSESCORE_COMMAND = "mscore3"
MUSESCORE_TICKS_PER_QUARTER = 480  # MScore::division
MUSESCORE_MIN_NOTE_TICKS = 15  # MChord::minAllowedDuration(): division / 32, a 128th note


@dataclass(frozen=True)
class NotationPart:
    """One part of the imported score: MusicXML ``part_id`` (``"P1"``, ... in track order); MuseScore's
    part ``name``, ``"<instrument>, <track name>"`` (e.g. ``"Church Organ, Soprano"``; the instrument
    alone for an unnamed track); zero-based GM ``program`` (MusicXML's 1-based ``midi-program`` less
    one; ``None`` if absent); ``is_percussion`` (unpitched notes or a percussion clef); number of
    ``measures``; ``staves`` (2 for a piano track split into hands)."""

    part_id: str
    name: str
    program: int | None
    is_percussion: bool
    measures: int
    staves: int

    @property
    def track_name(self) -> str:
        """The MIDI track name: ``name`` after MuseScore's ``"<instrument>, "`` prefix ("" if none)."""
        return self.name.split(", ", 1)[1] if ", " in self.name else ""


@dataclass(frozen=True)
class NotationImport:
    """What MuseScore 3 made of a MIDI file: ``parts`` in score order; ``time_signatures``: ``(measure
    index from 0, numerator, denominator)`` at measure 0 and at each change; ``tempos``: ``(measure
    index, quarter notes per minute)``; ``measures`` (longest part); ``notes`` written (each chord note;
    not rests or tied continuations); the ``musicxml`` file (``None`` if in a temporary folder); the
    encoding ``software`` (``"MuseScore 3.2.3"``)."""

    parts: list[NotationPart]
    time_signatures: list[tuple[int, int, int]]
    tempos: list[tuple[int, float]]
    measures: int
    notes: int
    musicxml: Path | None
    software: str


def musescore_available() -> bool:
    """Whether the MuseScore 3 command ``mscore3`` is on ``PATH``."""
    return shutil.which(MUSESCORE_COMMAND) is not None


def import_with_musescore(
    midi_path: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None, timeout: float = 120
) -> NotationImport:
    """Import the MIDI file ``midi_path`` with MuseScore 3 and read the score it makes.

    MuseScore runs with ``QT_QPA_PLATFORM=offscreen``, a private temporary ``HOME`` and XDG folders
    (the user's settings are never read or written) and its stderr captured. ``out_dir`` receives
    ``<stem>.musicxml`` (created if needed; ``None``: a temporary folder, removed after parsing);
    ``timeout``: seconds before MuseScore is killed.

    Raises:
        MidiError: the MIDI file is missing or empty.
        NotationError: mscore3 is missing, fails (exit code, last stderr line), times out or writes no
            file or an unreadable one.
    """
    return import_many_with_musescore([midi_path], out_dir, timeout)[0]


def import_many_with_musescore(
    midi_paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None = None,
    timeout: float = 120,
) -> list[NotationImport]:
    """:func:`import_with_musescore` for several files in one MuseScore process (a conversion job,
    ``mscore3 -j job.json``: about 0.05 s a chorale instead of 0.4 s); results in input order,
    ``timeout`` for the whole run, same errors (MuseScore stops at the first file it cannot read)."""
    sources = [Path(path).resolve() for path in midi_paths]
    if not sources:
        return []
    for source in sources:
        if not source.is_file() or source.stat().st_size == 0:
            raise MidiError(f"MIDI file {'is empty' if source.is_file() else 'not found'}: {source}")
    command = shutil.which(MUSESCORE_COMMAND)
    if command is None:
        raise NotationError("MuseScore 3 (mscore3) is not installed: apt-get install musescore3")
    with tempfile.TemporaryDirectory(prefix="notewave-mscore-") as work:
        folder = Path(out_dir).resolve() if out_dir is not None else Path(work) / "out"
        folder.mkdir(parents=True, exist_ok=True)
        stems = [source.stem for source in sources]  # a repeated stem gets its index: a-0, a-1
        targets = [folder / f"{n}{f'-{i}' * (stems.count(n) > 1)}.musicxml" for i, n in enumerate(stems)]
        for target in targets:
            target.unlink(missing_ok=True)
        job = Path(work) / "job.json"
        job.write_text(json.dumps([{"in": str(s), "out": str(t)} for s, t in zip(sources, targets)]))
        what = str(sources[0]) if len(sources) == 1 else f"{len(sources)} MIDI files"
        failure = _run_musescore([command, "-j", str(job)], Path(work), timeout, what)
        missing = [source for source, target in zip(sources, targets) if not target.is_file()]
        if failure or missing:
            name = missing[0] if missing else what
            raise NotationError(f"mscore3 failed on {name} ({failure or 'it wrote no MusicXML'})")
        return [parse_musicxml(target, keep_path=out_dir is not None) for target in targets]


def _run_musescore(argv: list[str], work: Path, timeout: float, what: str) -> str:
    """Run MuseScore in its own process group with a private home; returns "" on success, else
    "exit code N: <last stderr line>". Raises NotationError on timeout (the group is killed)."""
    home = work / "home"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home), XDG_RUNTIME_DIR=str(work / "run"))
    env.update({f"XDG_{kind.upper()}_HOME": str(home / kind) for kind in ("config", "data", "cache")})
    (work / "run").mkdir(mode=0o700)
    process = subprocess.Popen(
        argv, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise NotationError(f"mscore3 took longer than {timeout:g} s on {what}") from None
    if process.returncode == 0:
        return ""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return f"exit code {process.returncode}: {lines[-1] if lines else 'no message'}"


def parse_musicxml(path: str | os.PathLike[str], keep_path: bool = True) -> NotationImport:
    """Read partwise MusicXML (as MuseScore 3 writes it) into a :class:`NotationImport`; ``keep_path``:
    record ``path`` in it. Raises NotationError when it cannot be parsed or is not ``score-partwise``."""
    try:
        root = ET.parse(path).getroot()
        if root.tag != "score-partwise":
            raise ValueError(f"root <{root.tag}>, not <score-partwise>")
        parts, meters, tempos = [], [], set()
        for index, part in enumerate(root.findall("part")):
            part_id = part.get("id", f"P{index + 1}")
            head = root.find(f"part-list/score-part[@id='{part_id}']")
            head = head if head is not None else ET.Element("score-part")
            program = (head.findtext(".//midi-program") or "").strip()
            clefs = {x.text for x in part.iter("sign")}
            drums = head.find(".//midi-unpitched") is not None or "percussion" in clefs
            staves = int(part.findtext("measure/attributes/staves") or 1)
            gm = int(program) - 1 if program.isdigit() else None
            name = (head.findtext("part-name") or "").strip()
            parts.append(NotationPart(part_id, name, gm, drums, len(part.findall("measure")), staves))
            for bar, measure in enumerate(part.findall("measure")):
                tempos.update(
                    (bar, float(x.get("tempo", ""))) for x in measure.iter("sound") if x.get("tempo")
                )
                beats, unit = (
                    measure.findtext("attributes/time/beats"),
                    measure.findtext("attributes/time/beat-type"),
                )
                meter = (
                    (sum(map(int, beats.split("+"))), int(unit)) if index == 0 and beats and unit else None
                )
                if meter and (not meters or meters[-1][1:] != meter):
                    meters.append((bar, *meter))
    except (ET.ParseError, OSError, ValueError) as exc:
        raise NotationError(f"unreadable MusicXML {path}: {exc}") from exc
    notes = sum(
        1
        for note in root.iter("note")
        if note.find("rest") is None and not any(tie.get("type") == "stop" for tie in note.findall("tie"))
    )
    return NotationImport(
        parts=parts,
        time_signatures=meters,
        tempos=sorted(tempos),
        measures=max((part.measures for part in parts), default=0),
        notes=notes,
        musicxml=Path(path) if keep_path else None,
        software=root.findtext("identification/encoding/software", "").strip(),
    )


def _to_musescore_ticks(ticks: np.ndarray | int, tpq: int) -> np.ndarray:
    """Ticks at ``tpq`` per quarter in MuseScore's 480 per quarter, rounded as its importer does."""
    return (np.asarray(ticks, dtype=np.int64) * MUSESCORE_TICKS_PER_QUARTER + tpq // 2) // tpq


def _bar_lines(score: Score, until: int) -> list[tuple[int, Fraction, int]]:
    """``(tick, bar length in whole notes, meter numerator)`` of each bar from tick 0 until the first
    bar line at or after ``until`` (:func:`notewave.core.midi.bar_grid`: a bar takes the meter in force
    at its first tick, 4/4 before any)."""
    grid = bar_grid(score, until)
    return [(int(tick), Fraction(n, d), n) for tick, (n, d) in zip(grid.lines[:-1], grid.meters, strict=True)]


def musescore_bar_count(score: Score) -> int:
    """Measures MuseScore 3's MIDI import will create for ``score`` (written with ``dump_midi``):
    bars up to the latest note-off in its ticks, notes lengthened to a 128th, plus its pickup rule
    (see the module docstring). 0 for a score without notes."""
    tpq = score.ticks_per_quarter
    last, first = 0, None
    for track in score.tracks:
        if len(track.notes) == 0:
            continue
        arrays = track.notes.numpy()
        onset = _to_musescore_ticks(arrays["time"], tpq)
        length = np.maximum(_to_musescore_ticks(arrays["duration"], tpq), MUSESCORE_MIN_NOTE_TICKS)
        last = max(last, int((onset + length).max()))
        first = int(onset.min()) if first is None else min(first, int(onset.min()))
    if first is None:
        return 0
    until = -(-last * tpq // MUSESCORE_TICKS_PER_QUARTER)  # ceil: a release between ticks opens the bar
    bars = _bar_lines(score, until)
    sizes = [size for _, size, _ in bars[:3]]  # pickup rule: importmidi.cpp isPickupWithGreaterTimeSig
    pickup = len(sizes) > 1 and sizes[0] == 2 * sizes[1] and sizes[2:] in ([], [sizes[1]])
    return len(bars) + int(pickup and bars[0][2] % 3 != 0 and first > 0)


def finish_at_bar(score: Score, end_tick: int) -> Score:
    """A copy of ``score`` that MuseScore 3 imports with exactly the bars before ``end_tick``.

    Notes from ``end_tick`` on are dropped, the others shortened so that their release, in
    MuseScore's ticks and after its lengthening to a 128th, is at or before ``end_tick`` (a note
    starting less than a 128th before it is dropped). Pedals are cut at ``end_tick``; controllers
    and pitch bends after it, tempos, meters, keys, markers and lyrics at or after it are dropped.
    The last bar must hold a note (MuseScore drops trailing bars without one).

    ``end_tick``: the final bar line in ticks of ``score`` (a tick-based ``symusic.Score``; 4/4 before
    its first time signature). Returns the finished copy; ``score`` is not changed.

    Raises:
        ConfigError: ``end_tick`` is not a positive tick on a bar line of ``score``.
    """
    if isinstance(end_tick, bool) or not isinstance(end_tick, int | np.integer) or end_tick <= 0:
        raise ConfigError(f"end_tick must be a positive whole number of ticks, got {end_tick!r}")
    end_tick = int(end_tick)
    if end_tick not in {tick for tick, _, _ in _bar_lines(score, end_tick + 1)}:
        raise ConfigError(f"end_tick {end_tick} is not on a bar line of the score")
    tpq = score.ticks_per_quarter
    end_ms = int(_to_musescore_ticks(end_tick, tpq))
    out = score.copy()
    for track in out.tracks:
        if len(track.notes):
            a = track.notes.numpy()
            time = a["time"].astype(np.int64)
            room = end_ms - _to_musescore_ticks(time, tpq)
            # Longest length whose MuseScore ticks fit in the room: (d * 480 + tpq // 2) // tpq <= room.
            longest = (room * tpq + tpq - 1 - tpq // 2) // MUSESCORE_TICKS_PER_QUARTER
            keep = (time < end_tick) & (room >= MUSESCORE_MIN_NOTE_TICKS) & (longest >= 1)
            duration = np.minimum(np.minimum(a["duration"], end_tick - time), longest).astype(np.int32)
            track.notes = Note.from_numpy(
                a["time"][keep], duration[keep], a["pitch"][keep], a["velocity"][keep]
            )
        track.pedals.filter(lambda p: p.time < end_tick, inplace=True)
        for pedal in track.pedals:
            pedal.duration = min(pedal.duration, end_tick - pedal.time)
        track.controls.filter(lambda c: c.time <= end_tick, inplace=True)
        track.pitch_bends.filter(lambda b: b.time <= end_tick, inplace=True)
        track.lyrics.filter(lambda x: x.time < end_tick, inplace=True)
    for events in (out.tempos, out.time_signatures, out.key_signatures, out.markers):
        events.filter(lambda e: e.time < end_tick, inplace=True)
    return out

"""Convert the JSB Chorales (16th-note JSON encoding) to four-track MIDI files.

Source: the 382 four-part chorale harmonisations by J. S. Bach in the split of
Boulanger-Lewandowski, Bengio and Vincent (2012), "Modeling temporal dependencies in
high-dimensional sequences: application to polyphonic music generation and
transcription", ICML. The JSON file ``Jsb16thSeparated.json`` comes from the
czhuang/JSB-Chorales-dataset repository. It maps ``"train"``/``"valid"``/``"test"``
(229/76/77 chorales) to lists of chorales; a chorale is a list of 16th-note frames
``[soprano, alto, tenor, bass]`` of integer MIDI pitches, ``-1`` meaning the voice is
silent in that frame.

Conversion (see :func:`jsb_chorale_to_score`): one frame lasts ``ticks_per_quarter / 4``
ticks; the tempo is fixed (the dataset holds none; 80 BPM by default) and the metre is
4/4. Known limitation: the frames cannot tell a held note from a repeated one, so
consecutive equal pitches in a voice are merged into one held note.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import symusic
from tqdm import tqdm

import notewave
from notewave.core.io import atomic_path
from notewave.errors import ConfigError, DataError

JSB_ENV_VAR = "NOTEWAVE_JSB_JSON"
JSB_JSON_NAME = "Jsb16thSeparated.json"
JSB_SPLITS = ("train", "valid", "test")
JSB_VOICES = ("Soprano", "Alto", "Tenor", "Bass")
JSB_DEFAULT_TEMPO_BPM = 80.0
JSB_ORGAN_PROGRAM = 19  # General MIDI "Church Organ" (zero-based program number)
JSB_CHOIR_PROGRAM = 52  # General MIDI "Choir Aahs" (zero-based program number)
JSB_VELOCITY = 80
SILENT = -1

Chorale = list[list[int]]


def default_jsb_json() -> Path:
    """Locate ``Jsb16thSeparated.json`` without a path argument.

    The environment variable ``NOTEWAVE_JSB_JSON`` wins when set (an unset or empty
    variable is ignored); otherwise ``<project root>/../shared/data/jsb_chorales/`` is
    tried, the project root being the folder that holds the ``notewave`` package.

    Raises:
        DataError: the file is at none of these places (the message lists them).
    """
    env = os.environ.get(JSB_ENV_VAR, "").strip()
    if env:
        candidate = Path(env).expanduser()
        if candidate.is_file():
            return candidate
        raise DataError(
            f"{JSB_ENV_VAR} is set to {env!r}, which is not a file; point it at {JSB_JSON_NAME} "
            "or pass the JSON path as an argument"
        )
    project_root = Path(notewave.__file__).resolve().parents[1]
    candidate = (project_root / ".." / "shared" / "data" / "jsb_chorales" / JSB_JSON_NAME).resolve()
    if candidate.is_file():
        return candidate
    raise DataError(
        f"JSB Chorales JSON not found: looked at {candidate} (the environment variable {JSB_ENV_VAR} "
        "is not set); pass the path to Jsb16thSeparated.json as an argument or set "
        f"{JSB_ENV_VAR}"
    )


def load_jsb_json(json_path: str | os.PathLike[str] | None = None) -> dict[str, list[Chorale]]:
    """Read and check the JSB JSON file; return ``{split: [chorale, ...]}``.

    Pitches are returned as ``int`` (integral floats are accepted and converted);
    every frame has four values, each ``-1`` or a MIDI pitch 0-127.

    Raises:
        DataError: the file is missing or unreadable, is not JSON, or does not have
            the structure described in the module docstring (the message names the
            file and the offending split/chorale/frame).
    """
    path = default_jsb_json() if json_path is None else Path(json_path)
    if not path.is_file():
        raise DataError(f"JSB Chorales JSON not found: {path} is not a file")
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"{path}: expected a JSON object mapping split names to chorale lists")
    return {str(split): _check_split(path, str(split), chorales) for split, chorales in raw.items()}


def _check_split(path: Path, split: str, chorales: object) -> list[Chorale]:
    if not isinstance(chorales, list):
        raise DataError(f"{path}: split {split!r} is not a list of chorales")
    checked = []
    for index, chorale in enumerate(chorales):
        where = f"{path}: split {split!r}, chorale {index}"
        if not isinstance(chorale, list) or not chorale:
            raise DataError(f"{where} is not a non-empty list of frames")
        frames = []
        for step, frame in enumerate(chorale):
            if not isinstance(frame, list) or len(frame) != len(JSB_VOICES):
                raise DataError(f"{where}, frame {step}: expected {len(JSB_VOICES)} pitches, got {frame!r}")
            frames.append([_check_pitch(value, f"{where}, frame {step}") for value in frame])
        checked.append(frames)
    return checked


def _check_pitch(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{where}: pitch {value!r} is not a number")
    if isinstance(value, float) and not value.is_integer():
        raise DataError(f"{where}: pitch {value!r} is not a whole number")
    pitch = int(value)
    if pitch != SILENT and not 0 <= pitch <= 127:
        raise DataError(f"{where}: pitch {pitch} is neither -1 (silent) nor a MIDI pitch 0-127")
    return pitch


def voice_runs(pitches: Sequence[int]) -> list[tuple[int, int, int]]:
    """Split one voice into held notes: ``(start_frame, end_frame, pitch)``, end exclusive.

    A run is a maximal stretch of equal, non-silent pitches; ``-1`` (silent) ends a note
    and starts none.
    """
    runs: list[tuple[int, int, int]] = []
    start = 0
    for index in range(1, len(pitches) + 1):
        if index == len(pitches) or pitches[index] != pitches[start]:
            if pitches[start] != SILENT:
                runs.append((start, index, pitches[start]))
            start = index
    return runs


def jsb_chorale_to_score(
    frames: Sequence[Sequence[int]],
    tempo_bpm: float = JSB_DEFAULT_TEMPO_BPM,
    program: int = JSB_ORGAN_PROGRAM,
    ticks_per_quarter: int = 480,
    velocity: int = JSB_VELOCITY,
) -> symusic.Score:
    """Build a symusic Score (tick time) from one chorale's 16th-note frames.

    The Score has ``ticks_per_quarter`` ticks per quarter note, a 4/4 time signature and
    one tempo (``tempo_bpm`` quarter notes per minute) at tick 0, and four tracks named
    Soprano, Alto, Tenor and Bass (frame columns 0-3), all with General MIDI ``program``
    (zero-based; 19 church organ, 52 choir aahs). Frame ``i`` starts at tick
    ``i * ticks_per_quarter // 4``. Each run of equal non-silent pitches in a voice
    becomes one note of constant ``velocity``, so a repeated note is rendered as held
    (the dataset cannot distinguish the two). A track whose voice never sounds is empty.

    Raises:
        ConfigError: an out-of-range tempo, program, velocity or tick resolution.
    """
    _check_options(tempo_bpm, program, ticks_per_quarter, velocity)
    step = ticks_per_quarter // 4
    score = symusic.Score(ticks_per_quarter)
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    score.tempos.append(symusic.Tempo(0, qpm=float(tempo_bpm)))
    for voice, name in enumerate(JSB_VOICES):
        track = symusic.Track(name=name, program=program, is_drum=False)
        for start, end, pitch in voice_runs([frame[voice] for frame in frames]):
            track.notes.append(symusic.Note(start * step, (end - start) * step, pitch, velocity))
        score.tracks.append(track)
    return score


def _check_options(tempo_bpm: float, program: int, ticks_per_quarter: int, velocity: int) -> None:
    if not (isinstance(tempo_bpm, int | float) and math.isfinite(tempo_bpm) and 0 < tempo_bpm <= 1000):
        raise ConfigError(f"tempo must be a number of BPM in (0, 1000], got {tempo_bpm!r}")
    if not (isinstance(program, int) and 0 <= program <= 127):
        raise ConfigError(f"program must be a General MIDI program number 0-127, got {program!r}")
    if not (
        isinstance(ticks_per_quarter, int) and 4 <= ticks_per_quarter <= 32767 and ticks_per_quarter % 4 == 0
    ):
        raise ConfigError(
            f"ticks_per_quarter must be a multiple of 4 between 4 and 32764 so that a 16th note is a whole "
            f"number of ticks, got {ticks_per_quarter!r}"
        )
    if not (isinstance(velocity, int) and 1 <= velocity <= 127):
        raise ConfigError(f"velocity must be 1-127, got {velocity!r}")


def convert_jsb(
    json_path: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] = Path("data/jsb"),
    splits: Iterable[str] = JSB_SPLITS,
    tempo_bpm: float = JSB_DEFAULT_TEMPO_BPM,
    program: int = JSB_ORGAN_PROGRAM,
    ticks_per_quarter: int = 480,
    *,
    velocity: int = JSB_VELOCITY,
    progress: bool = True,
) -> dict[str, list[Path]]:
    """Convert JSB chorales to ``out_dir/<split>/jsb_<split>_<index:03d>.mid``.

    ``index`` is the chorale's zero-based position in the JSON split. ``json_path`` of
    ``None`` uses :func:`default_jsb_json`; ``out_dir`` is relative to the working
    folder when not absolute. Each file is written atomically and is the MIDI form of
    :func:`jsb_chorale_to_score` with the given tempo (BPM), program, ticks per quarter
    note and velocity; the output is byte-for-byte the same on every run. Existing files
    of the same name are replaced; other files in the folders are left alone.

    Returns:
        ``{split: [written paths in chorale order]}`` for the requested splits.

    Raises:
        ConfigError: an unknown split name or an out-of-range option.
        DataError: the JSON is missing, malformed, or lacks a requested split.
    """
    wanted = list(dict.fromkeys(splits))
    unknown = [split for split in wanted if split not in JSB_SPLITS]
    if not wanted or unknown:
        raise ConfigError(f"splits must be among {', '.join(JSB_SPLITS)}; got {wanted!r}")
    _check_options(tempo_bpm, program, ticks_per_quarter, velocity)
    path = default_jsb_json() if json_path is None else Path(json_path)
    data = load_jsb_json(path)
    missing = [split for split in wanted if split not in data]
    if missing:
        raise DataError(f"{path} has no split {missing[0]!r} (it has {', '.join(sorted(data))})")
    written: dict[str, list[Path]] = {}
    with tqdm(total=sum(len(data[s]) for s in wanted), unit="chorale", disable=not progress) as bar:
        for split in wanted:
            bar.set_description(f"jsb {split}")
            split_dir = Path(out_dir) / split
            written[split] = []
            for index, frames in enumerate(data[split]):
                score = jsb_chorale_to_score(frames, tempo_bpm, program, ticks_per_quarter, velocity)
                target = split_dir / f"jsb_{split}_{index:03d}.mid"
                with atomic_path(target) as tmp:
                    score.dump_midi(tmp)
                written[split].append(target)
                bar.update(1)
    return written

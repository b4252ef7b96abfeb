"""Accompaniment grooves of MMA (Musical MIDI Accompaniment, Debian package ``mma``) as MIDI files.

MMA turns a chord chart plus a named *groove* (a drum, bass, chord and arpeggio
pattern set, General MIDI) into a standard MIDI file. Its standard library
(:data:`MMA_LIBRARY`, ``/usr/share/mma/lib/stdlib``) defines about 1,160 grooves with
``DefGroove NAME`` lines in about 120 ``.mma`` files, one file per family (``swing.mma``
defines ``Swing``, ``SwingWalk``, ``SwingSus``, ...).

:func:`export_mma` renders each library groove (names ending in ``Intro``, ``End``,
``Ending`` or ``Fill`` plus a number are left out: they are one-off transitions; so are
the ``metronome*`` and ``none`` files) over a short chord chart: one of
:data:`PROGRESSIONS` (8, 12 or 16 bars, one chord per bar), transposed to one of
:data:`KEYS`, at a tempo near the style's :data:`STYLE_TEMPO_BPM`; progression, key and
tempo (and MMA's ``RndSeed``) are picked from the SHA-256 of the groove name, so each groove gets the
same chart. ``mma -w -xNOCREDIT -f OUT.mid SONG.mma`` runs in a temporary folder, in
``jobs`` parallel processes; outputs are cached in ``OUT/.cache`` under a hash of the
song text and MMA version, so a rerun renders nothing new. It also copies the example
songs the package ships (``/usr/share/doc/mma/examples/**/X.mid`` beside an ``X.mma``
that selects a groove), byte for byte.

Files: ``OUT/<split>/mma_<Groove>.mid`` and ``OUT/<split>/mma_example_<folder>_<X>.mid``.
The split key is the groove *family* (library file) or the example's name less trailing
digits (``twinkle1`` -> ``twinkle``), so variants never straddle splits.
Styles come from :data:`STYLE_PREFIXES`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from notewave.core.io import atomic_open
from notewave.errors import ConfigError, DataError
from notewave.symbolic.sources.card import (
    load_midi_bytes,
    package_info,
    piece_stats,
    remove_stale,
    safe_name,
    split_for,
    write_card,
    write_piece,
)

MMA_PACKAGE = "mma"
MMA_COMMAND = "mma"
MMA_LIBRARY = Path("/usr/share/mma/lib/stdlib")
MMA_EXAMPLES = Path("/usr/share/doc/mma/examples")
MMA_TIMEOUT_S = 120

# Style label -> lower-cased groove-name prefixes (see STYLE_PREFIXES).
_STYLE_TABLE = """
jazz: swing 68swing fastswing easyswing bebop bigband dixie evansish jazz fastjazz mellowjazz
  modernjazz nitejazz slowjazz descendingjazz folkyjazz gypsyjazz jive ragtime boggiewoggie
  shuffleboggie charleston strut
blues: blues fastblues slowblues countryblues hillcountry
latin: afro-cuban bossa samba salsa mambo merengue rhumba jazzrhumba chacha beguine bolero slowbolero tango
  lighttango son calypso cubanguitar latin lfusion
rock-pop: 50srock 60srock 8beat basicrock bubblerock folkrock jazzrock rock softrock twist ska r&b dsoul
  bvfunk boneym
ballad: ballad popballad pianoballad guitarballad stringballad folkballad r&b-ballad rockballad lullaby
folk-country: folk bluefolk bluegrass country slowcountry westernswing zydeco
dance-show: march 68march bwmarch waltz fastwaltz frenchwaltz vienesewaltz broadway slowbroadway showtune
  foxtrot quickstep polka softshoe
gospel: hymn spiritual popspiritual slowspiritual
"""
#: Lower-cased groove-name prefix -> style label; the longest matching prefix wins and
#: no match gives "groove". "rock-pop" covers rock, pop, R&B, soul, funk, disco and ska;
#: "dance-show" marches, waltzes, ballroom dances and Broadway; "gospel" hymns and spirituals.
STYLE_PREFIXES: dict[str, str] = {
    prefix: label
    for label, prefixes in re.findall(r"^([a-z-]+):((?:.*\n(?:  .*\n)*))", _STYLE_TABLE, re.MULTILINE)
    for prefix in prefixes.split()
}
DEFAULT_STYLE = "groove"
STYLE_TEMPO_BPM = {"ballad": 72, "blues": 100, "gospel": 90, "jazz": 132, "latin": 112, "rock-pop": 120}
DEFAULT_TEMPO_BPM = 112
#: Chord charts in C, one chord per bar (transposed per groove).
PROGRESSIONS: dict[str, tuple[str, ...]] = {
    "pop": ("C", "Am", "F", "G7", "C", "Am", "Dm7", "G7"),
    "turnaround": ("Cmaj7", "Am7", "Dm7", "G7", "Em7", "A7", "Dm7", "G7"),
    "folk": ("C", "F", "C", "G7", "C", "F", "G7", "C"),
    "minor": ("Am", "Dm", "E7", "Am", "F", "Dm", "E7", "Am"),
    "circle": ("C", "E7", "Am", "C7", "F", "D7", "G7", "C"),
    "blues": ("C7", "F7", "C7", "C7", "F7", "F7", "C7", "A7", "Dm7", "G7", "C7", "G7"),
    "ballad": tuple("Cmaj7 Em7 Am7 Gm7 C7 Fmaj7 Fm6 Em7 A7 Dm7 G7 Em7 A7 Dm7 G7 C6".split()),
}
KEYS = ("C", "F", "G", "Bb", "D", "Eb")
_NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_TRANSITION = re.compile(r"(intro|end|ending|fill)\d*$", re.IGNORECASE)
_SKIPPED_FILES = re.compile(r"^(metronome.*|none)$")
_DEF_GROOVE = re.compile(r"^\s*DefGroove\s+(\S+)", re.IGNORECASE | re.MULTILINE)
_GROOVE_LINE = re.compile(r"^\s*Groove\s+(\S+)", re.IGNORECASE | re.MULTILINE)


def groove_style(name: str) -> str:
    """Style label of a groove name by :data:`STYLE_PREFIXES` (case-insensitive; a trailing
    ``Intro``/``End``/``Fill`` and number are ignored); ``"groove"`` when no prefix matches."""
    lowered = _TRANSITION.sub("", name.lower())
    matches = [prefix for prefix in STYLE_PREFIXES if lowered.startswith(prefix)]
    return STYLE_PREFIXES[max(matches, key=len)] if matches else DEFAULT_STYLE


def _check_installed() -> str:
    command = shutil.which(MMA_COMMAND)
    if command is None or not MMA_LIBRARY.is_dir():
        missing = MMA_COMMAND if command is None else MMA_LIBRARY
        raise DataError(f"mma is not installed ({missing} not found): apt-get install {MMA_PACKAGE}")
    return command


def library_grooves(library: Path | None = None) -> list[tuple[str, str]]:
    """``(family, groove)`` pairs of the MMA library, one per distinct groove name.

    ``family`` is the stem of the defining file. Order: round-robin over the families
    (sorted by file name), so the first N grooves span N families. Transition grooves
    (``...Intro``, ``...End``, ``...Fill``) and the metronome/none files are left out;
    a name defined twice (case-insensitively) keeps its first definition.

    Raises:
        DataError: mma is not installed, or the library defines no grooves.
    """
    root = library if library is not None else MMA_LIBRARY
    if library is None:
        _check_installed()
    families: list[list[tuple[str, str]]] = []
    seen: set[str] = set()
    for path in sorted(root.glob("*.mma")):
        if _SKIPPED_FILES.match(path.stem):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        grooves = []
        for name in _DEF_GROOVE.findall(text):
            if _TRANSITION.search(name) or name.lower() in seen:
                continue
            seen.add(name.lower())
            grooves.append((path.stem, name))
        if grooves:
            families.append(grooves)
    if not families:
        raise DataError(f"no DefGroove lines found in {root}/*.mma")
    ordered = []
    for rank in range(max(len(grooves) for grooves in families)):
        ordered.extend(grooves[rank] for grooves in families if rank < len(grooves))
    return ordered


def transpose_chord(chord: str, semitones: int) -> str:
    """Transpose a chord symbol's root (``"F#m7"``, ``"Bb7"``) by ``semitones``; flats are used."""
    match = re.fullmatch(r"([A-G])([#b]?)(.*)", chord)
    if match is None:
        raise ConfigError(f"not a chord symbol: {chord!r}")
    root, accidental, quality = match.groups()
    pitch = _PITCH_CLASS[root] + {"#": 1, "b": -1, "": 0}[accidental] + semitones
    return _NOTE_NAMES[pitch % 12] + quality


def groove_song(groove: str) -> tuple[str, dict[str, Any]]:
    """The MMA song text rendering ``groove``, and its chart ``{progression, key, tempo_bpm, bars}``.

    Deterministic: progression, key and tempo offset (-10..+10 BPM around the style's
    tempo) come from the SHA-256 of the groove name.
    """
    digest = int(hashlib.sha256(groove.encode("utf-8")).hexdigest(), 16)
    names = sorted(PROGRESSIONS)
    progression = names[digest % len(names)]
    key = KEYS[(digest // 7) % len(KEYS)]
    tempo = STYLE_TEMPO_BPM.get(groove_style(groove), DEFAULT_TEMPO_BPM) + (digest // 97) % 21 - 10
    chords = [
        transpose_chord(chord, _PITCH_CLASS[key[0]] - (key[1:] == "b")) for chord in PROGRESSIONS[progression]
    ]
    lines = [
        f"// notewave: groove {groove}, progression {progression} in {key}",
        f"RndSeed {digest % 100000}",  # MMA randomises timing, volume and skips; fix its seed
        f"Tempo {tempo}",
        f"Groove {groove}",
    ]
    lines += [f"{bar} {chord}" for bar, chord in enumerate(chords, start=1)]
    chart = {"progression": progression, "key": key, "tempo_bpm": tempo, "chart_bars": len(chords)}
    return "\n".join(lines) + "\n", chart


@functools.cache
def _mma_version() -> str:
    return package_info(MMA_PACKAGE)["version"]


def render_song(song: str, cache_dir: Path, stem: str, command: str = MMA_COMMAND) -> bytes:
    """Render MMA song text to MIDI bytes, reusing ``cache_dir/<stem>-<hash>.mid`` when present.

    The hash covers the song text and the mma version. The cache file is written
    atomically after a successful render.

    Raises:
        DataError: mma fails, times out (:data:`MMA_TIMEOUT_S` seconds) or writes no
            file (the message holds mma's last error line).
    """
    version = _mma_version()
    cached = cache_dir / f"{stem}-{hashlib.sha256((version + song).encode()).hexdigest()[:16]}.mid"
    if cached.is_file():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory(prefix="notewave-mma-") as tmp:
        (Path(tmp) / "song.mma").write_text(song, encoding="utf-8")
        try:
            done = subprocess.run(
                [command, "-w", "-xNOCREDIT", "-f", "song.mid", "song.mma"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=MMA_TIMEOUT_S,
                env={**os.environ, "PYTHONHASHSEED": "0"},
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DataError(f"mma timed out after {MMA_TIMEOUT_S} s on {stem}") from exc
        output = Path(tmp) / "song.mid"
        if done.returncode != 0 or not output.is_file():
            lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if "Error" in line]
            raise DataError(f"mma failed on {stem} (exit {done.returncode}): {(lines or ['no output'])[-1]}")
        data = output.read_bytes()
    with atomic_open(cached, "wb") as handle:
        handle.write(data)
    return data


def example_songs(examples: Path | None = None) -> Iterator[tuple[Path, str]]:
    """``(midi path, groove)`` of the shipped example songs that select a library-style groove.

    An example counts when ``X.mid`` has a sibling ``X.mma`` whose first ``Groove`` line
    names a groove other than a metronome. Sorted by path.
    """
    root = examples if examples is not None else MMA_EXAMPLES
    for midi in sorted(root.rglob("*.mid")):
        song = midi.with_suffix(".mma")
        if not song.is_file():
            continue
        found = _GROOVE_LINE.search(song.read_text(encoding="utf-8", errors="replace"))
        if found and not found.group(1).lower().startswith("metronome"):
            yield midi, found.group(1)


def export_mma(
    out_dir: str | os.PathLike[str] = Path("data/mma"),
    limit: int | None = None,
    jobs: int | None = None,
    *,
    examples: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Render MMA library grooves (and copy its example songs) to ``out_dir/<split>/*.mid``.

    See the module docstring for the charts, naming, splits, styles and cache. ``limit``
    caps the number of grooves rendered (in :func:`library_grooves` order; examples are
    not counted); ``jobs`` is the number of mma processes run at once (default: up to 4,
    at most the CPU count). A groove mma cannot render, or whose MIDI has no notes, is
    skipped and listed in the card. ``mma_*.mid`` files in the split folders that this
    run did not write are removed, so the card always matches the folder.

    Returns:
        The data card as written to ``out_dir/data.json``.

    Raises:
        ConfigError: ``limit`` or ``jobs`` is not a positive integer.
        DataError: mma is not installed, or no groove could be rendered.
    """
    for option, value in (("limit", limit), ("jobs", jobs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{option} must be a positive whole number or None, got {value!r}")
    command = _check_installed()
    out = Path(out_dir)
    grooves = library_grooves()[:limit]
    jobs = jobs or max(1, min(4, os.cpu_count() or 1))
    songs = {groove: groove_song(groove) for _, groove in grooves}

    def render(item: tuple[str, str]) -> bytes | DataError:
        try:
            return render_song(songs[item[1]][0], out / ".cache", safe_name(item[1]), command)
        except DataError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=jobs) as pool:  # each thread waits on one mma process
        results = list(
            tqdm(
                pool.map(render, grooves), total=len(grooves), unit="groove", desc="mma", disable=not progress
            )
        )
    pieces: list[dict[str, Any]] = []
    written: list[Path] = []
    skipped: list[str] = []
    seen: dict[str, str] = {}

    def add(name: str, key: str, style: str, origin: str, data: bytes, extra: dict[str, Any]) -> None:
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            skipped.append(f"{origin} (same bytes as {seen[digest]})")
            return
        try:
            score = load_midi_bytes(data, origin)
        except DataError as exc:
            skipped.append(str(exc))
            return
        seen[digest] = origin
        split = split_for(key)
        written.append(write_piece(out, split, name, data))
        pieces.append(
            {
                "file": f"{split}/{name}",
                "split": split,
                "split_key": key,
                "style": style,
                "origin": origin,
                "sha256": digest,
                **extra,
                **piece_stats(score),
            }
        )

    for (family, groove), result in zip(grooves, results, strict=True):
        if isinstance(result, DataError):
            skipped.append(str(result))
            continue
        add(
            f"mma_{safe_name(groove)}.mid",
            f"family_{family}",
            groove_style(groove),
            f"{MMA_LIBRARY.name}/{family}.mma:{groove}",
            result,
            {"groove": groove, **songs[groove][1]},
        )
    n_examples = 0
    for midi, groove in example_songs() if examples else ():
        folder = midi.parent.relative_to(MMA_EXAMPLES).as_posix()
        add(
            f"mma_example_{safe_name(folder)}_{safe_name(midi.stem)}.mid",
            "example_" + re.sub(r"\d+$", "", midi.stem),  # twinkle1..3 share twinkle's split
            groove_style(groove),
            str(midi),
            midi.read_bytes(),
            {"groove": groove},
        )
        n_examples += 1
    if not any("groove" in piece and "progression" in piece for piece in pieces):
        raise DataError(f"mma rendered none of {len(grooves)} grooves: {(skipped or ['no grooves'])[0]}")
    remove_stale(out, "mma_", written)
    source = {**package_info(MMA_PACKAGE), "files": [str(MMA_LIBRARY), str(MMA_EXAMPLES)]}
    notes = [
        f"{len(grooves)} library grooves rendered with `mma -w -xNOCREDIT` over generated chord charts "
        f"(progressions {', '.join(sorted(PROGRESSIONS))}; keys {', '.join(KEYS)}; one chord per bar)"
        + (f", capped by --limit {limit}" if limit else "")
        + "; transition grooves (Intro/End/Fill) and metronome files left out.",
        f"{n_examples} shipped example songs that select a groove copied byte for byte.",
        f"Skipped ({len(skipped)}): {'; '.join(skipped) or 'none'}.",
        "Style labels by longest groove-name prefix (notewave.symbolic.sources.mma.STYLE_PREFIXES); "
        f"unmatched names get '{DEFAULT_STYLE}'.",
        "Split key: the groove family (library file) or the example's name less trailing digits, so "
        "variants share a split.",
        "Bars are counted from each file's time signatures: MMA's 6/8 grooves write a 6/8 time "
        "signature but count beats in quarter notes, so their file bar counts differ from the chart's "
        "bars (chart_bars in data.json).",
        "Licence: the groove library and examples are GPL-2+ (mma's copyright file); the rendered "
        "files derive from them.",
    ]
    return write_card(out, "MMA accompaniment grooves (General MIDI)", source, pieces, notes)

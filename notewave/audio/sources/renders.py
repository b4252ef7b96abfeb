"""``export_renders``: FluidSynth renders of MIDI folders (several SoundFonts, reverb, chorus) as FLAC.

Each MIDI file is cut to its first ``max_seconds`` seconds, rendered with one or more SoundFonts
(:func:`~notewave.bridge.render.render_midi`, reverb and chorus on by default), downmixed to mono,
loudness-normalised (RMS -20 dBFS, peak at most 0.99) and written as 16-bit FLAC to
``OUT/<source>/<split>/<piece>__<font>.flac``. ``<source>`` is the MIDI folder's name (its parent's
when the folder is itself ``train``/``valid``/``test``, as in ``data/jsb/test``) or the ``NAME`` of
``DIR:NAME``. The split is the MIDI file's: the first ``train``/``valid``/``test`` folder on its path
(the layout of ``notewave data jsb|music21|freedoom|mma``), else every ``holdout_every``-th file of
the folder's other files (sorted by path) goes to ``test``. Which fonts render a piece is drawn
from ``seed`` and the piece's path, so it is the same on every run. Renders are cached in
``OUT/.renders-cache.json``; pieces that cannot be rendered (no notes in the window, a broken file)
are left out and listed in the card (``OUT/data.json``, ``OUT/README.md``).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notewave.audio.sources.card import load_cache, save_cache, write_renders_card
from notewave.core.io import atomic_path, find_files
from notewave.errors import DataError, NotewaveError

CACHE_NAME = ".renders-cache.json"
CACHE_VERSION = 1
SPLIT_FOLDERS = ("train", "valid", "test")
MIDI_SUFFIXES = {".mid", ".midi"}


@dataclass(frozen=True)
class RenderJob:
    """One render: a MIDI file with one SoundFont, its split and the settings the cache compares."""

    source: str
    folder: str
    piece: str
    split: str
    midi: str
    size: int
    mtime_ns: int
    font: str
    font_path: str
    font_size: int

    @property
    def out_path(self) -> str:
        """``<source>/<split>/<piece>__<font>.flac``, relative to the export folder."""
        return f"{self.source}/{self.split}/{self.piece}__{self.font}.flac"


def parse_midi_source(spec: str | os.PathLike[str]) -> tuple[Path, str]:
    """``"DIR"`` or ``"DIR:NAME"`` -> ``(folder, source name)`` (see the module docstring)."""
    text = os.fspath(spec)
    folder, _, name = text.rpartition(":") if ":" in text and not Path(text).exists() else (text, "", "")
    path = Path(folder)
    if not name:
        name = path.resolve().parent.name if path.name in SPLIT_FOLDERS else path.resolve().name
    return path, name


def font_name(path: Path) -> str:
    """A SoundFont's name in file names: its stem with characters other than ``A-Za-z0-9.-`` as ``-``."""
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in path.stem)


def pick_fonts(piece_key: str, fonts: list[Path], count: int, seed: int) -> list[Path]:
    """``count`` of ``fonts`` for one piece (all when ``count >= len(fonts)``), drawn from ``seed`` and
    the piece's key, in the order of ``fonts``."""
    if count >= len(fonts):
        return list(fonts)
    digest = hashlib.sha256(f"{seed}:{piece_key}".encode()).digest()
    order = np.random.default_rng(int.from_bytes(digest[:8], "little")).permutation(len(fonts))
    return [fonts[i] for i in sorted(order[:count])]


def plan_renders(
    midi_dirs: list[str],
    fonts: list[Path],
    per_piece_fonts: int = 1,
    holdout_every: int = 5,
    limit: int | None = None,
    seed: int = 0,
) -> list[RenderJob]:
    """Every (MIDI file, SoundFont) render of the folders, with its split (see the module docstring).

    Args:
        limit: render at most this many pieces per folder and split (the first by sorted path; the
            split of a piece does not depend on ``limit``).

    Raises:
        DataError: a missing folder or one without MIDI files, two folders with one source name.
    """
    jobs, names = [], {}
    for spec in midi_dirs:
        folder, source = parse_midi_source(spec)
        if names.setdefault(source, folder) != folder:
            raise DataError(f"two MIDI folders are both called {source!r}: use DIR:NAME to name them apart")
        own = folder.name if folder.name in SPLIT_FOLDERS else None
        by_split: dict[str | None, list[Path]] = {}
        for path in find_files(folder, MIDI_SUFFIXES, kind="MIDI"):
            by_split.setdefault(own or _split_part(folder, path), []).append(path)
        splits: dict[Path, str] = {}
        for split, files in by_split.items():
            for index, path in enumerate(files):
                held = index % holdout_every == holdout_every - 1
                splits[path] = split or ("test" if held else "train")
        kept = (
            [p for files in by_split.values() for p in files[:limit]] if limit is not None else list(splits)
        )
        for path in sorted(kept):
            relative, split = path.relative_to(folder), splits[path]
            parts = relative.with_suffix("").parts
            piece = "__".join(parts[1:] if parts[0] == split and own is None else parts)
            stat = path.stat()
            for font in pick_fonts(f"{source}/{relative.as_posix()}", fonts, per_piece_fonts, seed):
                size = font.stat().st_size
                jobs.append(
                    RenderJob(
                        source,
                        str(folder),
                        piece,
                        split,
                        str(path),
                        stat.st_size,
                        stat.st_mtime_ns,
                        font_name(font),
                        str(font),
                        size,
                    )
                )
    return jobs


def _split_part(folder: Path, path: Path) -> str | None:
    return next((p for p in path.relative_to(folder).parts[:-1] if p in SPLIT_FOLDERS), None)


def render_job(job: RenderJob, out_dir: str, settings: dict) -> dict:
    """Render ``job`` (``settings``: sample_rate, reverb, chorus, max_seconds) to FLAC; its cache record.

    A piece FluidSynth cannot render (a NotewaveError: no notes in the window, a broken file) gives
    a record with ``"skipped"`` and no file.
    """
    import soundfile as sf

    from notewave.bridge.render import render_midi
    from notewave.core.midi import load_score

    record: dict[str, Any] = {**asdict(job), **settings}
    rate, cap = settings["sample_rate"], settings["max_seconds"]
    try:
        score = load_score(job.midi).to("second")
        if cap is not None:
            score = score.clip(0.0, float(cap), clip_end=True)
        wav, _ = render_midi(
            score,
            rate,
            soundfont=job.font_path,
            normalize="loudness",
            reverb=settings["reverb"],
            chorus=settings["chorus"],
            max_seconds=None,
        )
    except NotewaveError as exc:
        return {**record, "skipped": str(exc)}
    wav = wav[0, : int(round(cap * rate))] if cap is not None else wav[0]
    pcm = np.round(np.clip(wav, -1.0, 1.0) * 32767.0).astype(np.int16)
    target = Path(out_dir) / job.out_path
    with atomic_path(target) as tmp:
        sf.write(str(tmp), pcm, rate, format="FLAC", subtype="PCM_16")
    return {**record, "seconds": round(len(pcm) / rate, 3), "bytes": target.stat().st_size}


def _cached(record: dict | None, job: RenderJob, out: Path, settings: dict) -> bool:
    if record is None or any(record.get(k) != v for k, v in {**asdict(job), **settings}.items()):
        return False
    target = out / job.out_path
    return "skipped" in record or (target.is_file() and target.stat().st_size == record.get("bytes"))


def export_renders(
    out_dir: str | os.PathLike[str],
    midi_dirs: list[str],
    soundfonts: list[str] | None = None,
    per_piece_fonts: int = 1,
    reverb: bool = True,
    chorus: bool = True,
    max_seconds: float | None = 60.0,
    limit: int | None = None,
    jobs: int = 2,
    seed: int = 0,
    *,
    sample_rate: int = 32000,
    holdout_every: int = 5,
    progress: bool = True,
) -> dict:
    """Render MIDI folders with FluidSynth to mono FLAC for audio training (see the module docstring).

    Args:
        out_dir: the export folder ``OUT``.
        midi_dirs: MIDI folders, ``"DIR"`` or ``"DIR:NAME"`` (searched recursively).
        soundfonts: ``.sf2`` files (None: every installed one,
            :func:`~notewave.bridge.soundfont.list_soundfonts`).
        per_piece_fonts: SoundFonts per piece (each one render).
        reverb, chorus: FluidSynth's effects.
        max_seconds: render the first ``max_seconds`` seconds of each piece (None: all of it).
        limit: at most this many pieces per folder and split.
        jobs: render processes (1: in this process).
        seed: the draw of fonts per piece.
        sample_rate: output rate in Hz.
        holdout_every: for files outside split folders, every N-th is ``test``.
        progress: show a tqdm bar.

    Returns:
        The data card (``OUT/data.json``) with a ``"run"`` entry (written, cached, skipped, seconds).

    Raises:
        DataError: missing or empty MIDI folders; SoundfontError: no SoundFont, or a bad one given.
    """
    from tqdm import tqdm

    from notewave.bridge.soundfont import find_soundfont, list_soundfonts

    started, out = time.monotonic(), Path(out_dir)
    fonts = [find_soundfont(f) for f in soundfonts] if soundfonts else list_soundfonts()
    if not fonts:
        find_soundfont()  # raises SoundfontError with the install hint
    if per_piece_fonts < 1 or holdout_every < 2:
        raise DataError(
            f"need per_piece_fonts >= 1 and holdout_every >= 2, got {per_piece_fonts}, {holdout_every}"
        )
    settings = {"sample_rate": sample_rate, "reverb": reverb, "chorus": chorus, "max_seconds": max_seconds}
    plan = plan_renders(midi_dirs, fonts, per_piece_fonts, holdout_every, limit, seed)
    cache_path = out / CACHE_NAME
    cache = load_cache(cache_path, CACHE_VERSION)
    todo = [job for job in plan if not _cached(cache.get(job.out_path), job, out, settings)]
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(todo), desc="render", unit="render", disable=not progress)

    def done(record: dict) -> None:
        cache[RenderJob(**{k: record[k] for k in RenderJob.__dataclass_fields__}).out_path] = record
        save_cache(cache_path, CACHE_VERSION, cache)
        bar.update(1)

    if jobs <= 1 or len(todo) <= 1:
        for job in todo:
            done(render_job(job, str(out), settings))
    else:
        # spawn, not fork: a forked child of a process with torch/OpenMP threads can deadlock on a lock
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for future in as_completed([pool.submit(render_job, job, str(out), settings) for job in todo]):
                done(future.result())
    bar.close()
    present = [r for key, r in cache.items() if "skipped" in r or (out / key).is_file()]
    card = write_renders_card(out, present, settings, per_piece_fonts)
    card["run"] = {
        "written": sum("skipped" not in cache[j.out_path] for j in todo),
        "cached": len(plan) - len(todo),
        "skipped": sorted(j.out_path for j in plan if "skipped" in cache[j.out_path]),
        "seconds": round(time.monotonic() - started, 1),
    }
    return card

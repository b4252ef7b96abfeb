"""``export_game_music``: the Debian game-music packages as mono FLAC files with a held-out test set.

Every track is decoded (Ogg Vorbis and Ogg Opus through libsndfile; members of zip
archives read into memory), downmixed to mono by averaging the channels, resampled with
soxr (HQ) and written as 16-bit FLAC to ``OUT/<package>/<train|test>/<track>.flac``
(atomically). ``OUT/.game-music-cache.json`` records each written track with its source's
size and mtime (for zip members: the archive's mtime and the member's CRC-32), the rate and
the length cap; a track whose record matches and whose output exists is not decoded again.
``OUT/data.json`` and ``OUT/README.md`` (the data card) list, per package, the tracks and hours
of each split, the held-out track names, the licence and the source.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from notewave.audio.sources.card import load_cache, save_cache, write_game_music_card
from notewave.audio.sources.packages import GAME_MUSIC, TrackJob, plan_tracks
from notewave.core.io import atomic_path
from notewave.errors import AudioError, DataError

CACHE_NAME = ".game-music-cache.json"
CACHE_VERSION = 1


def _open_source(job: TrackJob) -> Any:
    """A path or an in-memory file soundfile can read."""
    if job.member is None:
        return job.source
    try:
        with zipfile.ZipFile(job.source) as archive:
            return io.BytesIO(archive.read(job.member))
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise AudioError(f"cannot read {job.member} from {job.source}: {exc}") from exc


def decode_track(
    job: TrackJob, sample_rate: int, max_seconds: float | None = None
) -> tuple[np.ndarray, dict]:
    """Decode one track to mono float32 ``[samples]`` at ``sample_rate`` Hz, and its source facts.

    Args:
        max_seconds: decode only the first ``max_seconds`` seconds (None: the whole track).

    Returns:
        ``(wav, info)``: ``info`` holds ``source_rate`` (Hz), ``source_channels`` and
        ``source_seconds`` (the full length of the source).

    Raises:
        AudioError: an unreadable file or member, no samples, or NaN/inf samples.
    """
    import soundfile as sf

    from notewave.core.audio_io import resample

    where = job.source if job.member is None else f"{job.source}:{job.member}"
    try:
        with sf.SoundFile(_open_source(job)) as handle:
            rate, channels, frames = int(handle.samplerate), int(handle.channels), int(handle.frames)
            count = frames if max_seconds is None else min(frames, int(round(max_seconds * rate)))
            data = handle.read(count, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError
        raise AudioError(f"cannot decode {where}: {exc}") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{where} holds no samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{where} contains NaN or infinite samples")
    mono = data.mean(axis=1, dtype=np.float32)
    wav = resample(mono[None], rate, sample_rate)[0]
    return wav, {"source_rate": rate, "source_channels": channels, "source_seconds": frames / rate}


def export_track(job: TrackJob, out_dir: str, sample_rate: int, max_seconds: float | None) -> dict:
    """Decode ``job`` and write ``OUT/<package>/<split>/<name>.flac`` (16-bit, mono); its cache record.

    A track shorter than ``job.min_seconds`` is not written; its record has ``"skipped"``.

    Raises:
        AudioError: as :func:`decode_track`.
    """
    import soundfile as sf

    wav, info = decode_track(job, sample_rate, max_seconds)
    record: dict[str, Any] = {**asdict(job), **info, "sample_rate": sample_rate, "max_seconds": max_seconds}
    if info["source_seconds"] < job.min_seconds:
        return {**record, "skipped": f"shorter than {job.min_seconds:g} s ({info['source_seconds']:.1f} s)"}
    clipped = int(np.count_nonzero(np.abs(wav) > 1.0))
    pcm = np.round(np.clip(wav, -1.0, 1.0) * 32767.0).astype(np.int16)
    target = Path(out_dir) / job.out_path
    with atomic_path(target) as tmp:
        sf.write(str(tmp), pcm, sample_rate, format="FLAC", subtype="PCM_16")
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    return {
        **record,
        "seconds": round(len(pcm) / sample_rate, 3),
        "bytes": target.stat().st_size,
        "peak": round(float(np.abs(wav).max()), 4),
        "rms_dbfs": round(20 * np.log10(max(rms, 1e-9)), 2),
        "clipped_samples": clipped,
    }


def _cached(
    record: dict | None, job: TrackJob, out: Path, sample_rate: int, max_seconds: float | None
) -> bool:
    """True when ``record`` was made from the same source, split, rate and cap, and its file is there."""
    if record is None:
        return False
    same = {**asdict(job), "sample_rate": sample_rate, "max_seconds": max_seconds}
    if any(record.get(key) != value for key, value in same.items()):
        return False
    if "skipped" in record:
        return True
    target = out / job.out_path
    return target.is_file() and target.stat().st_size == record.get("bytes")


def _remove_stale(out: Path, packages: set[str], keep: set[str], cache: dict[str, dict]) -> list[str]:
    """Delete FLAC files (and cache records) of the exported packages that are not in ``keep``."""
    removed = []
    for name in packages:
        for split in ("train", "test", "valid"):
            for path in sorted((out / name / split).glob("*.flac")):
                relative = path.relative_to(out).as_posix()
                if relative not in keep:
                    path.unlink()
                    removed.append(relative)
    for key in [k for k, r in cache.items() if r.get("package") in packages and k not in keep]:
        del cache[key]
    return removed


def export_game_music(
    out_dir: str | os.PathLike[str] = Path("data/audio"),
    packages: list[str] | None = None,
    holdout_every: int = 5,
    sample_rate: int = 32000,
    jobs: int = 2,
    progress: bool = True,
    *,
    only: list[str] | None = None,
    max_seconds: float | None = None,
) -> dict:
    """Export the game music of :data:`~notewave.audio.sources.packages.GAME_MUSIC` as mono FLAC.

    Args:
        out_dir: the export folder ``OUT``.
        packages: short or Debian package names (None: all five).
        holdout_every: every ``holdout_every``-th track per package (by sorted file path) is held
            out whole for ``test`` (see :mod:`notewave.audio.sources.packages`).
        sample_rate: output rate in Hz.
        jobs: worker processes (1: decode in this process).
        progress: show a tqdm bar.
        only: export only the tracks whose ``<package>/<name>`` is in this list (their split is the
            one they have in the full export); for tests and spot checks.
        max_seconds: write only the first ``max_seconds`` seconds of each track (None: whole tracks).

    Returns:
        The data card (the content of ``OUT/data.json``) with a ``"run"`` entry: tracks written,
        from the cache, skipped, stale files removed, seconds taken.

    Raises:
        DataError: an unknown or missing package (one line naming the ``apt-get`` command), a name
            in ``only`` that matches no track.
        AudioError: a track that cannot be decoded.
    """
    from tqdm import tqdm

    started = time.monotonic()
    out = Path(out_dir)
    plan = plan_tracks(packages, holdout_every)
    if only is not None:
        wanted = set(only)
        plan = [job for job in plan if f"{job.package}/{job.name}" in wanted]
        found = {f"{job.package}/{job.name}" for job in plan}
        if wanted - found:
            raise DataError(f"no such track: {sorted(wanted - found)[0]} (use <package>/<track name>)")
    cache_path = out / CACHE_NAME
    cache = load_cache(cache_path, CACHE_VERSION)
    todo = [job for job in plan if not _cached(cache.get(job.out_path), job, out, sample_rate, max_seconds)]
    removed = (
        _remove_stale(out, {job.package for job in plan}, {job.out_path for job in plan}, cache)
        if only is None
        else []
    )
    bar = tqdm(total=len(todo), desc="game music", unit="track", disable=not progress)

    def done(record: dict) -> None:
        cache[record["package"] + "/" + record["split"] + "/" + record["name"] + ".flac"] = record
        save_cache(cache_path, CACHE_VERSION, cache)
        bar.update(1)

    out.mkdir(parents=True, exist_ok=True)
    if jobs <= 1 or len(todo) <= 1:
        for job in todo:
            done(export_track(job, str(out), sample_rate, max_seconds))
    else:
        # spawn, not fork: a forked child of a process with torch/OpenMP threads can deadlock on a lock
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(export_track, job, str(out), sample_rate, max_seconds) for job in todo]
            for future in as_completed(futures):
                done(future.result())
    bar.close()
    save_cache(cache_path, CACHE_VERSION, cache)
    card = write_game_music_card(out, cache, GAME_MUSIC, holdout_every, sample_rate)
    card["run"] = {
        "written": sum("skipped" not in cache[j.out_path] for j in todo),
        "cached": len(plan) - len(todo),
        "skipped": sorted(f"{j.package}/{j.name}" for j in plan if "skipped" in cache[j.out_path]),
        "removed": removed,
        "seconds": round(time.monotonic() - started, 1),
    }
    return card

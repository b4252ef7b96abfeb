"""The registry of Debian game-music packages and the plan of an export: tracks and their split.

Each :class:`GamePackage` says where its music lies (a folder, or a folder inside a zip
archive such as a Quake-style ``.pk3``), which files to leave out, and its licence as the
package's ``/usr/share/doc/<package>/copyright`` states it. :func:`plan_tracks` lists the
tracks of the chosen packages, each with its split: a track is held out for ``test`` when its
0-based index in the package's sorted list of audio files (relative paths, before any file is
left out) is ``holdout_every - 1`` modulo ``holdout_every`` (for Wesnoth and ``holdout_every=5``
exactly the 8 tracks the first codec held out); a package with fewer files holds out its last.
"""

from __future__ import annotations

import fnmatch
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from notewave.errors import DataError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class GamePackage:
    """One Debian package of game music.

    Attributes:
        name: short name, the output folder (``OUT/<name>``) and the audio LM's style tag.
        package: the Debian package (``apt-get install <package>``).
        root: the music folder, or the zip archive (``container="zip"``).
        container: ``"folder"`` or ``"zip"``.
        member_prefix: the folder inside the zip archive (``"music/"``); ``""`` for folders.
        suffixes: audio file suffixes, lower case.
        exclude: shell patterns on the track name of files left out (after the split is decided).
        min_seconds: tracks shorter than this (in seconds) are left out.
        variant_suffix: a file-name suffix that marks a remake of another track (``"_enhanced"``):
            a remake and its original share one split (test when either is held out).
        licence: the licence of the music per the package's copyright file.
        about: one line on the music.
    """

    name: str
    package: str
    root: Path
    container: str
    licence: str
    about: str
    member_prefix: str = ""
    suffixes: tuple[str, ...] = (".ogg",)
    exclude: tuple[str, ...] = ()
    min_seconds: float = 0.0
    variant_suffix: str = ""

    @property
    def copyright_file(self) -> Path:
        return Path("/usr/share/doc") / self.package / "copyright"

    def installed(self) -> bool:
        """True when the music folder (or archive) exists."""
        return self.root.is_dir() if self.container == "folder" else self.root.is_file()

    def require(self) -> None:
        """Raises DataError (one line with the ``apt-get`` command) when the package is not installed."""
        if not self.installed():
            raise DataError(
                f"{self.name} music not found ({self.root}): install it with apt-get install {self.package}"
            )


#: The game-music packages :func:`~notewave.audio.sources.export_game_music` knows, by short name.
GAME_MUSIC: dict[str, GamePackage] = {
    p.name: p
    for p in (
        GamePackage(
            "wesnoth",
            "wesnoth-1.16-music",
            Path("/usr/share/games/wesnoth/1.16/data/core/music"),
            "folder",
            "GPL-2+",
            "The Battle for Wesnoth: orchestral fantasy score (strings, brass, choir, folk instruments)",
            exclude=("silence",),
        ),
        GamePackage(
            "warzone2100",
            "warzone2100-music",
            Path("/usr/share/games/warzone2100/music"),
            "folder",
            "GPL-2+ (aftermath album also CC-BY-SA-3.0+, see albums/*/license.txt)",
            "Warzone 2100: electronic and orchestral sci-fi soundtracks, three albums (Ogg Opus)",
            suffixes=(".opus",),
            variant_suffix="_enhanced",
        ),
        GamePackage(
            "ufoai",
            "ufoai-music",
            Path("/usr/share/games/ufoai/base/0music.pk3"),
            "zip",
            "CC-BY-3.0, CC-BY-SA-3.0 or GPL-2+ per track (Files: stanzas of the copyright file)",
            "UFO: Alien Invasion: cinematic orchestral and electronic tactical-game music",
            member_prefix="music/",
            exclude=("dynamictest-*",),
        ),
        GamePackage(
            "hyperrogue",
            "hyperrogue-music",
            Path("/usr/share/hyperrogue/music"),
            "folder",
            "GPL-2+",
            "HyperRogue: ambient, ethnic and chiptune-like roguelike music, one piece per land",
        ),
        GamePackage(
            "nexuiz",
            "nexuiz-music",
            Path("/usr/share/games/nexuiz/data/music.pk3"),
            "zip",
            "GPL-2+",
            "Nexuiz: electronic, techno and industrial arena-shooter music",
            member_prefix="sound/cdtracks/",
            exclude=("thunder",),
            min_seconds=20.0,
        ),
    )
}


@dataclass(frozen=True)
class TrackJob:
    """One track to export: where it is, its split, and the source facts the cache compares."""

    package: str
    name: str
    split: str
    source: str
    member: str | None
    size: int
    mtime_ns: int
    min_seconds: float

    @property
    def out_path(self) -> str:
        """The output path relative to the export folder: ``<package>/<split>/<name>.flac``."""
        return f"{self.package}/{self.split}/{self.name}.flac"


def select_packages(names: Sequence[str] | None = None) -> list[GamePackage]:
    """The packages called ``names`` (short or Debian names; None: all), in registry order.

    Raises:
        DataError: an unknown name.
    """
    if not names:
        return list(GAME_MUSIC.values())
    by_any = {**{p.package: p for p in GAME_MUSIC.values()}, **GAME_MUSIC}
    unknown = [n for n in names if n not in by_any]
    if unknown:
        raise DataError(f"unknown game-music package {unknown[0]!r}; known: {', '.join(GAME_MUSIC)}")
    chosen = {by_any[n].name for n in names}
    return [p for p in GAME_MUSIC.values() if p.name in chosen]


def track_name(relative: str) -> str:
    """A file's path below the music folder as a track name: ``albums/x/track1.opus`` ->
    ``albums__x__track1``."""
    return "__".join(Path(relative).with_suffix("").parts)


def _listing(package: GamePackage) -> list[tuple[str, str, str | None, int, int]]:
    """``(relative path, source, member, size, mtime_ns)`` of the package's audio files, sorted."""
    if package.container == "folder":
        files = [p for p in package.root.rglob("*") if p.is_file() and p.suffix.lower() in package.suffixes]
        rows = []
        for path in files:
            stat = path.stat()
            rows.append(
                (path.relative_to(package.root).as_posix(), str(path), None, stat.st_size, stat.st_mtime_ns)
            )
        return sorted(rows)
    stat = package.root.stat()
    try:
        with zipfile.ZipFile(package.root) as archive:
            infos = archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read the archive {package.root}: {exc}") from exc
    rows = []
    for info in infos:
        relative = info.filename[len(package.member_prefix) :]
        if (
            info.filename.startswith(package.member_prefix)
            and Path(relative).suffix.lower() in package.suffixes
        ):
            key = stat.st_mtime_ns ^ info.CRC  # the archive's mtime and the member's checksum
            rows.append((relative, str(package.root), info.filename, info.file_size, key))
    return sorted(rows)


def _variant_key(relative: str, suffix: str) -> str:
    """The file name without its suffix and without a trailing ``suffix`` (the original's name)."""
    stem = Path(relative).stem
    return stem[: -len(suffix)] if suffix and stem.endswith(suffix) else stem


def plan_tracks(packages: Sequence[str] | None = None, holdout_every: int = 5) -> list[TrackJob]:
    """Every track of the chosen packages with its split (see the module docstring).

    Excluded names (:attr:`GamePackage.exclude`) are dropped after the split is decided, so
    leaving a file out never moves another between train and test. A remake
    (:attr:`GamePackage.variant_suffix`) of a held-out track is held out too, and vice versa.

    Raises:
        DataError: an unknown or missing package (naming the ``apt-get`` command), an
            unreadable archive, a package without audio files, or ``holdout_every < 2``.
    """
    if holdout_every < 2:
        raise DataError(f"holdout_every must be at least 2, got {holdout_every}")
    jobs = []
    for package in select_packages(packages):
        package.require()
        rows = _listing(package)
        if not rows:
            raise DataError(f"no audio files ({', '.join(package.suffixes)}) in {package.root}")
        held = {i for i in range(len(rows)) if i % holdout_every == holdout_every - 1} or {len(rows) - 1}
        held_keys = {_variant_key(rows[i][0], package.variant_suffix) for i in held}
        for index, (relative, source, member, size, mtime_ns) in enumerate(rows):
            name = track_name(relative)
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in package.exclude):
                continue
            key = _variant_key(relative, package.variant_suffix)
            split = "test" if index in held or (package.variant_suffix and key in held_keys) else "train"
            jobs.append(
                TrackJob(package.name, name, split, source, member, size, mtime_ns, package.min_seconds)
            )
    return jobs

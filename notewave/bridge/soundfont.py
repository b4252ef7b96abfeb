"""Locating a General MIDI SoundFont (``.sf2`` / ``.sf3``) for FluidSynth rendering.

Search order used by :func:`find_soundfont`:

1. an explicit path given by the caller;
2. the ``NOTEWAVE_SOUNDFONT`` environment variable;
3. the system SoundFont folders (Debian/Ubuntu ``/usr/share/sounds/sf2``, also
   ``/usr/share/soundfonts`` used by Fedora/Arch), preferring ``FluidR3_GM.sf2``,
   then ``TimGM6mb.sf2``, then any other ``.sf2``/``.sf3`` there in name order;
4. the ``TimGM6mb.sf2`` bundled with the ``pretty_midi`` package, when installed
   (located without importing it).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from notewave.errors import SoundfontError

ENV_VAR = "NOTEWAVE_SOUNDFONT"
SOUNDFONT_SUFFIXES = (".sf2", ".sf3")
SYSTEM_SOUNDFONT_DIRS: tuple[Path, ...] = (Path("/usr/share/sounds/sf2"), Path("/usr/share/soundfonts"))
PREFERRED_NAMES: tuple[str, ...] = ("FluidR3_GM.sf2", "TimGM6mb.sf2")

_INSTALL_HINT = (
    "install one with `sudo apt-get install timgm6mb-soundfont` (or fluid-soundfont-gm), "
    f"or set {ENV_VAR}=/path/to/soundfont.sf2, or pass soundfont=PATH"
)


def _check_file(path: Path, origin: str) -> Path:
    """Return ``path`` if it is an existing ``.sf2``/``.sf3`` file, else raise SoundfontError."""
    if path.suffix.lower() not in SOUNDFONT_SUFFIXES:
        raise SoundfontError(f"{origin} {str(path)!r} is not a SoundFont: expected a .sf2 or .sf3 file")
    if not path.is_file():
        raise SoundfontError(f"{origin} {str(path)!r} does not exist or is not a file")
    return path


def _system_soundfonts() -> list[Path]:
    """SoundFonts in the system folders, preferred names first, then the rest by name."""
    found: list[Path] = []
    for folder in SYSTEM_SOUNDFONT_DIRS:
        if not folder.is_dir():
            continue
        preferred = [folder / name for name in PREFERRED_NAMES if (folder / name).is_file()]
        others = sorted(
            p
            for p in folder.iterdir()
            if p.suffix.lower() in SOUNDFONT_SUFFIXES and p.is_file() and p.name not in PREFERRED_NAMES
        )
        found.extend(preferred + others)
    return found


def _pretty_midi_soundfont() -> Path | None:
    """Path of pretty_midi's bundled ``TimGM6mb.sf2`` if the package is installed, else None."""
    try:
        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "TimGM6mb.sf2"
        if candidate.is_file():
            return candidate
    return None


def _dedupe(paths: list[Path]) -> list[Path]:
    """Drop paths that resolve to a file already listed (e.g. ``default-GM.sf2`` symlinks)."""
    seen: set[Path] = set()
    unique: list[Path] = []
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def list_soundfonts() -> list[Path]:
    """List every SoundFont :func:`find_soundfont` could pick, in its order of preference.

    Includes the file named by ``NOTEWAVE_SOUNDFONT`` (when it exists), the ``.sf2``/``.sf3``
    files in the system SoundFont folders and pretty_midi's bundled ``TimGM6mb.sf2``.
    Symlinks to an already-listed file are dropped. Never raises; returns ``[]`` when
    nothing is installed.
    """
    candidates: list[Path] = []
    env_value = os.environ.get(ENV_VAR)
    if env_value:
        env_path = Path(env_value).expanduser()
        if env_path.suffix.lower() in SOUNDFONT_SUFFIXES and env_path.is_file():
            candidates.append(env_path)
    candidates.extend(_system_soundfonts())
    bundled = _pretty_midi_soundfont()
    if bundled is not None:
        candidates.append(bundled)
    return _dedupe(candidates)


def find_soundfont(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the SoundFont file to render with (see the module docstring for the search order).

    Args:
        path: an explicit ``.sf2``/``.sf3`` file. When given it must exist; no fallback
            is tried.

    Returns:
        Path of an existing SoundFont file (FluidSynth reads SoundFont 2; ``.sf3`` needs a
        FluidSynth built with libsndfile/Vorbis support).

    Raises:
        SoundfontError: the explicit path or ``NOTEWAVE_SOUNDFONT`` names a missing or
            non-SoundFont file, or no SoundFont is installed anywhere searched (the message
            says how to install one).
    """
    if path is not None:
        return _check_file(Path(path).expanduser(), "SoundFont")
    env_value = os.environ.get(ENV_VAR)
    if env_value:
        return _check_file(Path(env_value).expanduser(), f"SoundFont from ${ENV_VAR}")
    system = _system_soundfonts()
    if system:
        return system[0]
    bundled = _pretty_midi_soundfont()
    if bundled is not None:
        return bundled
    searched = ", ".join(str(d) for d in SYSTEM_SOUNDFONT_DIRS)
    raise SoundfontError(
        f"no SoundFont (.sf2) found (searched ${ENV_VAR}, {searched}, pretty_midi): {_INSTALL_HINT}"
    )


def load_soundfont(synth: Any, path: str | os.PathLike[str]) -> int:
    """Load ``path`` into a pyfluidsynth ``Synth``; return its SoundFont id (>= 1).

    Raises SoundfontError naming the file when FluidSynth cannot load it.
    """
    sfid = synth.sfload(os.fspath(path))
    if sfid < 0:
        raise SoundfontError(
            f"FluidSynth could not load SoundFont {os.fspath(path)!r} (corrupt or not a SoundFont)"
        )
    return sfid


def select_preset(synth: Any, chan: int, sfid: int, bank: int, program: int) -> None:
    """Select preset ``bank:program`` of SoundFont ``sfid`` on MIDI channel ``chan`` (0-15).

    Bank 128 is the General MIDI percussion bank. When the SoundFont lacks the preset,
    program 0 of the same bank is used instead (the lookup is silent; asking FluidSynth for
    a missing preset directly would log an error).
    """
    if program != 0 and synth.sfpreset_name(sfid, bank, program) is not None:
        if synth.program_select(chan, sfid, bank, program) == 0:
            return
    synth.program_select(chan, sfid, bank, 0)

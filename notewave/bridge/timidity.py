"""Offline MIDI -> audio rendering with TiMidity++ (https://timidity.sourceforge.net), a second synthesis
engine beside FluidSynth (:mod:`notewave.bridge.render`), used to judge a transcriber on audio from an
engine and instruments it never trained on.

The default instruments are the Freepats GUS patches (Debian ``timidity`` + ``freepats``,
``/etc/timidity/freepats.cfg``): samples, envelopes and effects that no FluidSynth SoundFont shares.
TiMidity++ always reads ``/etc/timidity/timidity.cfg`` before any ``-c`` file, and on Debian that file
maps every General MIDI program to FluidR3_GM.sf2; programs and drum notes that Freepats lacks would
then sound through FluidR3_GM. :func:`render_timidity` therefore runs TiMidity with a generated
configuration that sources the chosen one and maps each program (drum note) it lacks to its nearest
defined program (drum note), same GM family first, so that every note sounds through that
configuration's own patches. Bank selects are dropped and drum tracks use drum set 0 for the same
reason. TiMidity's own effects (its default Freeverb reverb and chorus) stay on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from notewave.bridge.render import NORMALIZE_MODES, _check_length, _load_score, _normalize
from notewave.errors import ConfigError, RenderError

if TYPE_CHECKING:
    from symusic import Score

PathLike = str | os.PathLike[str]
DEFAULT_CONFIG = Path("/etc/timidity/freepats.cfg")
INSTALL_HINT = "install it with `sudo apt-get install timidity freepats`"
TIMEOUT_SECONDS = 600.0  # one render; TiMidity runs ~100x real time, so only a hang gets here
_BANK_SELECT = (0, 32)  # CC numbers of bank select MSB / LSB


def timidity_binary() -> Path:
    """Path of the ``timidity`` command; RenderError (naming the apt-get command) when it is missing."""
    found = shutil.which("timidity")
    if found is None:
        raise RenderError(f"the timidity command (TiMidity++) is not installed; {INSTALL_HINT}")
    return Path(found)


def _instruments(config: Path, depth: int = 0) -> tuple[dict[int, str], dict[int, str]]:
    """Bank-0 programs and drum-set-0 notes of a TiMidity config (``source`` lines followed):
    ``{number: "patch options"}`` each, the definition text after the number."""
    programs: dict[int, str] = {}
    drums: dict[int, str] = {}
    section: tuple[str, int] | None = None
    for raw in config.read_text(encoding="utf-8", errors="replace").splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "source" and len(words) > 1 and depth < 8:
            more = _instruments(Path(words[1]), depth + 1) if Path(words[1]).is_file() else ({}, {})
            programs.update(more[0])
            drums.update(more[1])
        elif words[0] in ("bank", "drumset"):
            section = (words[0], int(words[1]) if len(words) > 1 and words[1].isdigit() else 0)
        elif words[0].isdigit() and len(words) > 1 and section in (("bank", 0), ("drumset", 0)):
            target = programs if section == ("bank", 0) else drums
            target[int(words[0])] = " ".join(words[1:])
    return programs, drums


def _filled_config(config: Path) -> str:
    """Text of a TiMidity config that sources ``config`` and defines all 128 programs of bank 0 and
    drum notes 0-127 of drum set 0 with its patches (missing ones: the nearest defined one)."""
    programs, drums = _instruments(config)
    if not programs:
        raise RenderError(f"TiMidity config {str(config)!r} defines no bank-0 instruments")
    lines = [f"source {config}", "bank 0"]
    for p in range(128):
        if p not in programs:
            q = min(programs, key=lambda q: (q // 8 != p // 8, abs(q - p), q))
            lines.append(f"{p} {programs[q]}")
    if drums:
        lines.append("drumset 0")
        lines += [
            f"{n} {drums[min(drums, key=lambda d: (abs(d - n), d))]}" for n in range(128) if n not in drums
        ]
    return "\n".join(lines) + "\n"


def _timidity_midi(score: Score) -> Score:
    """A copy of ``score`` (ticks) without bank selects and with drum tracks on drum set 0."""
    out = score.copy()
    for track in out.tracks:
        track.controls.filter(lambda c: c.number not in _BANK_SELECT, inplace=True)
        if track.is_drum:
            track.program = 0
    return out


def render_timidity(
    midi: PathLike | bytes | Score,
    sample_rate: int = 32000,
    config: PathLike | None = None,
    max_seconds: float | None = None,
    tail_seconds: float = 1.0,
    normalize: str | None = "loudness",
) -> tuple[np.ndarray, int]:
    """Render a MIDI score to mono audio with the ``timidity`` command (TiMidity++, offline).

    Runs ``timidity -c CFG -Ow -s RATE --output-mono --preserve-silence`` on a temporary copy of the
    score in a temporary folder (module docstring: why CFG is a generated config around ``config``).
    Drum tracks are rendered (General MIDI drum set 0). Timing: 0 s of the audio is 0 s of the score.

    Args:
        midi: a MIDI file path, the bytes of a MIDI file, or a ``symusic.Score`` (any time unit).
        sample_rate: output rate in Hz, 8000..96000.
        config: a TiMidity config file (default ``/etc/timidity/freepats.cfg``, the Freepats patches).
        max_seconds: longest audio to render in seconds (> 0); ``None`` (default): any length.
        tail_seconds: seconds kept after the last note-off (TiMidity's release and reverb tail is
            cut there, or silence is added), as in :func:`~notewave.bridge.render.render_midi`.
        normalize: ``"loudness"`` (default: RMS -20 dBFS, peak at most 0.99), ``"peak"`` (0.95) or
            ``None``, as in :func:`~notewave.bridge.render.render_midi`.

    Returns:
        ``(wav, sample_rate)``: ``wav`` float32 ``[1, samples]`` in [-1, 1] (the layout of
        ``render_midi(..., stereo=False)``), ``round((last note-off + tail_seconds) * sample_rate)``
        samples long.

    Raises:
        RenderError: ``timidity`` or the config (Freepats) is missing (the message names the apt-get
            command), a bad ``sample_rate``, TiMidity fails or writes no audio, or the audio would last
            longer than ``max_seconds``.
        MidiError: unreadable MIDI or no notes (the message names the file).
        ConfigError: negative ``tail_seconds``, unknown ``normalize``, ``max_seconds`` not > 0.
    """
    import soundfile

    whole = isinstance(sample_rate, (int, float, np.number)) and float(sample_rate).is_integer()
    if not whole or not 8000 <= sample_rate <= 96000:
        raise RenderError(f"sample_rate {sample_rate!r} must be whole Hz within 8000..96000")
    if not tail_seconds >= 0 or normalize not in NORMALIZE_MODES:
        raise ConfigError(
            f"need tail_seconds >= 0 and normalize in {NORMALIZE_MODES}; "
            f"got tail_seconds={tail_seconds!r}, normalize={normalize!r}"
        )
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"max_seconds must be > 0 seconds (or None for no cap), got {max_seconds!r}")
    sample_rate = int(sample_rate)
    binary = timidity_binary()
    cfg = Path(config) if config is not None else DEFAULT_CONFIG
    if not cfg.is_file():
        hint = INSTALL_HINT if config is None else "give an existing TiMidity .cfg file"
        raise RenderError(f"TiMidity config {str(cfg)!r} not found; {hint}")
    seconds, name = _load_score(midi)
    _check_length(seconds, name, tail_seconds, max_seconds)
    ends = [t.notes.numpy() for t in seconds.tracks if len(t.notes)]
    last_off = max((float((n["time"] + n["duration"]).max()) for n in ends), default=0.0)
    total = round((last_off + tail_seconds) * sample_rate)
    with tempfile.TemporaryDirectory(prefix="notewave-timidity-") as tmp:
        folder = Path(tmp)
        (folder / "render.cfg").write_text(_filled_config(cfg), encoding="utf-8")
        _timidity_midi(seconds.to("tick")).dump_midi(str(folder / "in.mid"))
        command = [str(binary), "-c", str(folder / "render.cfg"), "-Ow", "-o", str(folder / "out.wav")]
        command += ["-s", str(sample_rate), "--output-mono", "--preserve-silence", str(folder / "in.mid")]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, cwd=tmp)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RenderError(f"timidity could not render {name}: {exc}") from exc
        out = folder / "out.wav"
        if done.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
            said = " ".join((done.stderr or done.stdout or "").split())[-300:]
            raise RenderError(f"timidity failed on {name} (exit {done.returncode}): {said or 'no audio'}")
        audio, rate = soundfile.read(str(out), dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise RenderError(f"timidity wrote {rate} Hz audio for {name}, not the {sample_rate} Hz asked for")
    wav = np.zeros((1, total), dtype=np.float32)
    mono = audio.mean(axis=1)[:total]
    wav[0, : len(mono)] = mono
    return np.ascontiguousarray(_normalize(wav, normalize), dtype=np.float32), sample_rate

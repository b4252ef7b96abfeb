"""Audio augmentation of the transcriber's training renders, so that they do not all sound like one
FluidSynth preset (:mod:`notewave.bridge.transcription.data` uses it when ``augment`` is on).

Per rendered medley (:func:`medley_effects`, :func:`augment_medley`): a SoundFont drawn from every
installed one except a held-out one (:func:`training_soundfonts`; default held out:
:data:`HOLDOUT_SOUNDFONT`, MuseScore General, kept for evaluation), FluidSynth's reverb and chorus
each on with probability 1/2, a random EQ (1-3 RBJ-cookbook biquads: low shelf, high shelf or
peaking; R. Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter coefficients"), and the
level set to :attr:`Augmentation.level_db` RMS (peak at most 0.99). The drum tracks of multi-track
sources are rendered into the audio but are never labels
(:func:`~notewave.bridge.transcription.data.make_medley`).

Per training crop (:func:`augment_crop`): a random gain (-12..0 dB) and additive coloured noise
(white to brown: a random spectral slope 1/f^a, a in 0..2) at a random SNR (20..40 dB) relative to
the medley's RMS after the gain, so that the noise floor stays on in quiet passages.

Everything is drawn from the ``numpy.random.Generator`` passed in: the same seed gives the same audio.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from notewave.errors import ConfigError, SoundfontError

HOLDOUT_SOUNDFONT = "MuseScore_General_Lite.sf3"  # Debian musescore-general-soundfont-small
EXTRA_SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf3"),)  # beside list_soundfonts()'s sf2 folders
EQ_KINDS = ("lowshelf", "highshelf", "peaking")
PathLike = str | os.PathLike[str]


#: GM2 drum kits (bank 128): standard, room, power, electronic, TR-808, jazz, brush, orchestra
GM_DRUM_KITS = (0, 8, 16, 24, 25, 32, 40, 48)


@dataclass(frozen=True)
class Augmentation:
    """Probabilities and ranges of the training augmentation (module docstring).

    Attributes:
        reverb, chorus: probability that FluidSynth's reverb / chorus is on for a medley.
        eq: probability of a random EQ on a medley; eq_bands: (min, max) biquads; eq_gain_db: largest
            boost or cut of one biquad in dB.
        level_db: medley RMS in dBFS before the crop gain.
        gain_db: (low, high) crop gain in dB; snr_db: (low, high) crop signal-to-noise ratio in dB.
        drums: render the drum tracks of the sources (never labels).
        drum_velocity: (low, high) factor on the velocities of a piece's drum notes.
        drum_kits: General MIDI drum kit programs (bank 128: :data:`GM_DRUM_KITS`) to draw one from per
            medley; a SoundFont without that kit plays its standard kit (FluidSynth's fallback).
        source_programs: probability of keeping a voice's own General MIDI program (outside the
            held-out ensemble family and the unpitched programs 115-127) instead of a random one.
        ensemble: train on the ensemble family 48-55 too (string ensembles, choirs: random and own
            programs), which is otherwise held out for the timbre table.
        synth: probability that a medley's pitched parts are played by random additive-synthesis
            instruments (:mod:`notewave.bridge.transcription.synth`) instead of the SoundFont (its drums
            still through FluidSynth; its reverb, when drawn, a synthetic room).
    """

    reverb: float = 0.5
    chorus: float = 0.5
    eq: float = 0.8
    eq_bands: tuple[int, int] = (1, 3)
    eq_gain_db: float = 9.0
    level_db: float = -16.0
    gain_db: tuple[float, float] = (-12.0, 0.0)
    snr_db: tuple[float, float] = (20.0, 40.0)
    drums: bool = True
    drum_velocity: tuple[float, float] = (0.6, 1.2)
    drum_kits: tuple[int, ...] = (0,)
    source_programs: float = 0.3
    ensemble: bool = False
    synth: float = 0.0


# ---- SoundFonts ------------------------------------------------------------------------
def installed_soundfonts() -> list[Path]:
    """Every installed SoundFont: :func:`~notewave.bridge.soundfont.list_soundfonts` plus the ``.sf2`` /
    ``.sf3`` files of :data:`EXTRA_SOUNDFONT_DIRS`, each file once: links to a file already listed and
    files of a name already listed (pretty_midi's copy of TimGM6mb.sf2) are left out."""
    from notewave.bridge.soundfont import SOUNDFONT_SUFFIXES, list_soundfonts

    found = list(list_soundfonts())
    for folder in EXTRA_SOUNDFONT_DIRS:
        if folder.is_dir():
            found += sorted(
                p for p in folder.iterdir() if p.suffix.lower() in SOUNDFONT_SUFFIXES and p.is_file()
            )
    seen: set[str] = set()
    unique = []
    for path in found:
        keys = {str(path.resolve()), path.resolve().name}
        if not keys & seen:
            seen |= keys | {path.name}
            unique.append(path)
    return unique


def is_soundfont(path: Path, name: PathLike | None) -> bool:
    """Whether ``path`` is the SoundFont ``name`` (a path, a file name or a file stem; links resolved)."""
    if name is None:
        return False
    given = Path(name).expanduser()
    if given.exists() and given.resolve() == path.resolve():
        return True
    names = {path.name, path.stem, path.resolve().name, path.resolve().stem}
    return given.name in names or given.resolve().name in names


def training_soundfonts(
    names: Sequence[PathLike] | None = None, holdout: PathLike | None = HOLDOUT_SOUNDFONT
) -> list[Path]:
    """SoundFonts to render training audio with: ``names`` (each checked by
    :func:`~notewave.bridge.soundfont.find_soundfont`), or every installed one but ``holdout``.

    Raises:
        ConfigError: a SoundFont in ``names`` is the held-out one.
        SoundfontError: a named file is missing or no SoundFont is left.
    """
    from notewave.bridge.soundfont import find_soundfont

    if names:
        fonts = [find_soundfont(n) for n in names]
        for font in fonts:
            if is_soundfont(font, holdout):
                raise ConfigError(
                    f"SoundFont {str(font)!r} is held out of training (--holdout-soundfont {holdout})"
                )
        return fonts
    fonts = [p for p in installed_soundfonts() if not is_soundfont(p, holdout)]
    if not fonts:
        raise SoundfontError(
            f"no SoundFont to train with besides the held-out {holdout}: install one with "
            "`sudo apt-get install timgm6mb-soundfont fluid-soundfont-gm`"
        )
    return fonts


# ---- EQ --------------------------------------------------------------------------------
def biquad(kind: str, freq_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """One RBJ-cookbook biquad as a float64 second-order section ``[1, 6]`` (``b0 b1 b2 1 a1 a2``).

    ``kind``: ``"lowshelf"`` / ``"highshelf"`` (shelf slope S = ``q``; gain ``gain_db`` dB below /
    above ``freq_hz``) or ``"peaking"`` (bandwidth from ``q``). Raises ConfigError for an unknown kind
    or ``freq_hz`` outside (0, Nyquist).
    """
    if kind not in EQ_KINDS or not 0 < freq_hz < sample_rate / 2 or not q > 0:
        raise ConfigError(
            f"biquad needs kind in {EQ_KINDS}, 0 < freq < Nyquist and q > 0; got {kind}, {freq_hz}, {q}"
        )
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * freq_hz / sample_rate
    cos, sin = np.cos(w0), np.sin(w0)
    if kind == "peaking":
        alpha = sin / (2.0 * q)
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    else:
        alpha = sin / 2.0 * np.sqrt((a + 1 / a) * (1 / q - 1) + 2)
        root = 2 * np.sqrt(a) * alpha
        sign = 1.0 if kind == "lowshelf" else -1.0
        b = [
            a * ((a + 1) - sign * (a - 1) * cos + root),
            sign * 2 * a * ((a - 1) - sign * (a + 1) * cos),
            a * ((a + 1) - sign * (a - 1) * cos - root),
        ]
        den = [(a + 1) + sign * (a - 1) * cos + root, -sign * 2 * ((a - 1) + sign * (a + 1) * cos)]
        den.append((a + 1) + sign * (a - 1) * cos - root)
    return np.array([[*(np.array(b) / den[0]), 1.0, den[1] / den[0], den[2] / den[0]]], dtype=np.float64)


def random_eq(
    rng: np.random.Generator, sample_rate: int, spec: Augmentation
) -> tuple[np.ndarray, list[dict]]:
    """Random biquads (:func:`biquad`): float64 sections ``[n, 6]`` and their settings (kind, Hz, dB, q)."""
    nyquist = sample_rate / 2
    bands = []
    for _ in range(int(rng.integers(spec.eq_bands[0], spec.eq_bands[1] + 1))):
        kind = EQ_KINDS[int(rng.integers(len(EQ_KINDS)))]
        low, high = {"lowshelf": (60.0, 400.0), "highshelf": (1500.0, 6000.0), "peaking": (150.0, 5000.0)}[
            kind
        ]
        freq = float(np.exp(rng.uniform(np.log(low), np.log(min(high, 0.45 * nyquist)))))
        q = float(
            rng.uniform(0.5, 1.0) if kind != "peaking" else np.exp(rng.uniform(np.log(0.5), np.log(2.5)))
        )
        bands.append(
            {"kind": kind, "freq_hz": freq, "gain_db": float(rng.uniform(-1, 1) * spec.eq_gain_db), "q": q}
        )
    sos = np.concatenate([biquad(sample_rate=sample_rate, **band) for band in bands]).reshape(-1, 6)
    return sos, bands


def set_level(wav: np.ndarray, level_db: float, peak: float = 0.99) -> np.ndarray:
    """``wav`` scaled to RMS ``level_db`` dBFS, lowered if needed so its peak is at most ``peak``
    (float32; digital silence is returned as is)."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    top = float(np.abs(wav).max(initial=0.0))
    if rms <= 0 or top <= 0:
        return wav.astype(np.float32)
    return (wav * min(10.0 ** (level_db / 20.0) / rms, peak / top)).astype(np.float32)


# ---- per medley, per crop --------------------------------------------------------------
def medley_effects(rng: np.random.Generator, spec: Augmentation) -> dict[str, bool]:
    """FluidSynth effects of one medley: ``{"reverb": bool, "chorus": bool}`` for ``render_midi``."""
    return {"reverb": bool(rng.random() < spec.reverb), "chorus": bool(rng.random() < spec.chorus)}


def augment_medley(
    wav: np.ndarray, rng: np.random.Generator, sample_rate: int, spec: Augmentation
) -> np.ndarray:
    """A rendered medley (float ``[samples]``) with, with probability ``spec.eq``, a random EQ
    (:func:`random_eq`), then set to ``spec.level_db`` (:func:`set_level`): float32 ``[samples]``."""
    from scipy.signal import sosfilt

    out = np.asarray(wav, dtype=np.float64)
    if rng.random() < spec.eq:
        sos, _ = random_eq(rng, sample_rate, spec)
        out = sosfilt(sos, out)
    return set_level(out, spec.level_db)


def coloured_noise(rng: np.random.Generator, length: int, slope: float) -> np.ndarray:
    """Gaussian noise float64 ``[length]`` of unit RMS whose power falls as ``1 / f**slope``
    (0 white, 1 pink, 2 brown; DC removed)."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length)
    freqs[0] = freqs[1] if length > 1 else 1.0
    spectrum *= freqs ** (-slope / 2.0)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=length)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def augment_crop(
    crop: np.ndarray, rng: np.random.Generator, reference_rms: float, spec: Augmentation
) -> tuple[np.ndarray, dict[str, Any]]:
    """One training crop with a random gain and coloured noise (module docstring).

    Args:
        crop: float ``[samples]`` audio cut from a medley; reference_rms: that medley's RMS (linear).

    Returns:
        ``(audio float32 [samples] clipped to [-1, 1], {"gain_db", "snr_db", "noise_slope"})``; the
        noise RMS is ``reference_rms * 10**(gain_db / 20) / 10**(snr_db / 20)``.
    """
    gain_db = float(rng.uniform(*spec.gain_db))
    snr_db = float(rng.uniform(*spec.snr_db))
    slope = float(rng.uniform(0.0, 2.0))
    gain = 10.0 ** (gain_db / 20.0)
    noise_rms = reference_rms * gain / 10.0 ** (snr_db / 20.0)
    out = crop.astype(np.float64) * gain + noise_rms * coloured_noise(rng, len(crop), slope)
    info = {"gain_db": gain_db, "snr_db": snr_db, "noise_slope": slope}
    return np.clip(out, -1.0, 1.0).astype(np.float32), info

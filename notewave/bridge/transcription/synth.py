"""A procedural additive synthesizer for the transcriber's training medleys: instruments no SoundFont has.

SoundFonts are recordings of a few hundred instruments; a transcriber trained on four of them learns
their harmonic profiles and, on an unseen SoundFont, confuses a note with its octave when the
profile differs (a weak fundamental reads as the octave above, a strong second harmonic adds one).
Here every voice of a medley gets a random harmonic timbre (:func:`random_timbre`): a spectral tilt,
a weak or strong fundamental, odd/even balance (clarinet-like to brass-like), fixed-frequency
resonances (a body's formants), piano-like inharmonicity, an attack-decay-sustain-release envelope in
which higher partials die faster, vibrato, an onset noise burst and, for some voices, an overdrive;
:func:`synthesize` renders notes with it by summing sinusoidal partials (additive synthesis), passes
an overdriven voice's sum through a ``tanh`` waveshaper (:func:`overdrive`: dense upper partials and,
on chords, intermodulation, as a distorted guitar has), and :func:`room` adds a synthetic
reverberation (exponentially decaying noise impulse response). Used by
:class:`~notewave.bridge.transcription.data.MedleyPool` for a share of the medleys
(``Augmentation.synth``); the drum tracks are still rendered by FluidSynth.

Randomised synthetic timbres for pitch and transcription training follow the idea of domain
randomisation (Tobin et al., "Domain randomization for transferring deep neural networks from
simulation to the real world", IROS 2017); the partial model is the textbook one (inharmonic strings:
``f_h = h f0 sqrt(1 + B h^2)``, Fletcher 1964).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_PARTIALS = 40
NOTE_LEVEL = 0.06  # peak amplitude of a velocity-127 note before the voice gain (FluidSynth-like level)
MAX_NOTE_SECONDS = 8.0  # longer notes are synthesized this long (then faded out)


@dataclass(frozen=True)
class Timbre:
    """One synthetic instrument (:func:`random_timbre`).

    Attributes:
        partials: float64 ``[MAX_PARTIALS]`` amplitude of partial ``h = 1..`` before the resonances.
        resonances: float64 ``[R, 3]`` rows (centre Hz, width in octaves, gain dB) of fixed-frequency
            resonances, applied by each partial's frequency.
        inharmonicity: B of ``f_h = h f0 sqrt(1 + B h^2)`` (0: harmonic).
        attack_s, decay_s, release_s: envelope times in seconds; sustain: level 0..1 after the decay.
        damping: higher partials decay faster: partial ``h`` decays with ``decay_s / (1 + damping (h-1))``.
        vibrato_cents, vibrato_hz: sinusoidal frequency modulation depth (cents) and rate (Hz).
        noise: level of a short noise burst at each onset, relative to the note's peak.
        gain: the voice's level factor in the mix.
        drive: overdrive of the voice's sum (:func:`overdrive`); 0: clean.
    """

    partials: np.ndarray
    resonances: np.ndarray
    inharmonicity: float
    attack_s: float
    decay_s: float
    sustain: float
    release_s: float
    damping: float
    vibrato_cents: float
    vibrato_hz: float
    noise: float
    gain: float
    drive: float = 0.0


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def random_timbre(rng: np.random.Generator) -> Timbre:
    """A random :class:`Timbre`: tilt ``h**-a`` (a 0..2.5), fundamental x0.15..1.5, even partials
    x0.05..1.5, +-3 dB jitter per partial, 0-3 resonances (200..5000 Hz, 0.2..1 octave, -12..+18 dB),
    inharmonicity 0 (60 %) or 1e-5..5e-4, a plucked/struck (40 %: no sustain) or sustained envelope,
    vibrato (40 %), an onset noise burst (50 %), voice gain -6..+3 dB, an overdrive of 2..30 (35 %)."""
    h = np.arange(1, MAX_PARTIALS + 1, dtype=np.float64)
    amp = h ** -rng.uniform(0.0, 2.5) * 10 ** (rng.normal(0.0, 3.0, MAX_PARTIALS) / 20)
    amp[0] *= _log_uniform(rng, 0.15, 1.5)
    amp[1::2] *= _log_uniform(rng, 0.05, 1.5)
    n_res = int(rng.integers(0, 4))
    resonances = np.column_stack(
        [
            [_log_uniform(rng, 200.0, 5000.0) for _ in range(n_res)],
            rng.uniform(0.2, 1.0, n_res),
            rng.uniform(-12.0, 18.0, n_res),
        ]
    ).reshape(-1, 3)
    struck = rng.random() < 0.4
    return Timbre(
        partials=amp / amp.max(),
        resonances=resonances,
        inharmonicity=0.0 if rng.random() < 0.6 else _log_uniform(rng, 1e-5, 5e-4),
        attack_s=_log_uniform(rng, 0.001, 0.01) if struck else _log_uniform(rng, 0.005, 0.12),
        decay_s=_log_uniform(rng, 0.2, 2.0) if struck else _log_uniform(rng, 0.05, 0.5),
        sustain=0.0 if struck else float(rng.uniform(0.3, 1.0)),
        release_s=_log_uniform(rng, 0.03, 0.4),
        damping=float(rng.uniform(0.0, 0.3) if struck else rng.uniform(0.0, 0.05)),
        vibrato_cents=float(rng.uniform(5.0, 25.0)) if rng.random() < 0.4 else 0.0,
        vibrato_hz=float(rng.uniform(4.5, 6.5)),
        noise=float(_log_uniform(rng, 0.02, 0.5)) if rng.random() < 0.5 else 0.0,
        gain=10 ** (rng.uniform(-6.0, 3.0) / 20),
        drive=_log_uniform(rng, 2.0, 30.0) if rng.random() < 0.35 else 0.0,
    )


def _resonance_gain(timbre: Timbre, freqs: np.ndarray) -> np.ndarray:
    """Linear gain of ``timbre``'s resonances at ``freqs`` (Hz): Gaussian bumps in log frequency."""
    db = np.zeros_like(freqs)
    for centre, width, gain in timbre.resonances:
        db += gain * np.exp(-0.5 * (np.log2(freqs / centre) / width) ** 2)
    return 10 ** (db / 20)


def note_samples(seconds: float, timbre: Timbre, sample_rate: int) -> int:
    """Length in samples of a note held ``seconds`` in ``timbre`` (:func:`synthesize_note`): held at most
    :data:`MAX_NOTE_SECONDS`, then its release."""
    return max(1, int((min(seconds, MAX_NOTE_SECONDS) + timbre.release_s) * sample_rate))


def synthesize_note(
    pitch: float, velocity: float, seconds: float, timbre: Timbre, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """One note (MIDI ``pitch``, ``velocity`` 1..127, held ``seconds``) in ``timbre``: float64
    ``[samples]`` lasting ``min(seconds, MAX_NOTE_SECONDS) + release_s`` at ``sample_rate`` Hz; partials
    above 0.45 x ``sample_rate`` are left out (no aliasing)."""
    held = min(seconds, MAX_NOTE_SECONDS)
    n = note_samples(seconds, timbre, sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)
    h = np.arange(1, MAX_PARTIALS + 1, dtype=np.float64)
    freqs = h * f0 * np.sqrt(1.0 + timbre.inharmonicity * h**2)
    keep = freqs < 0.45 * sample_rate
    h, freqs = h[keep], freqs[keep]
    loud = velocity / 127.0
    amps = timbre.partials[keep] * _resonance_gain(timbre, freqs) * h ** (-(1.0 - loud) * 0.5)
    ratio = 1.0
    if timbre.vibrato_cents:
        ratio = 2.0 ** (timbre.vibrato_cents / 1200 * np.sin(2 * np.pi * timbre.vibrato_hz * t))
    phase = 2 * np.pi * f0 * np.cumsum(np.broadcast_to(ratio, t.shape)) / sample_rate  # of the fundamental
    attack = np.minimum(1.0, t / timbre.attack_s)
    after = np.maximum(0.0, t - timbre.attack_s)
    release = np.clip(1.0 - (t - held) / timbre.release_s, 0.0, 1.0)
    out = np.zeros(n)
    for k in range(len(h)):
        decay = timbre.decay_s / (1.0 + timbre.damping * (h[k] - 1.0))
        env = attack * (timbre.sustain + (1.0 - timbre.sustain) * np.exp(-after / decay)) * release
        out += amps[k] * env * np.sin(freqs[k] / f0 * phase + rng.uniform(0, 2 * np.pi))
    if timbre.noise:
        burst = min(n, int(0.02 * sample_rate))
        out[:burst] += (
            timbre.noise * rng.standard_normal(burst) * np.exp(-np.arange(burst) / (0.004 * sample_rate))
        )
    peak = max(float(np.abs(out).max()), 1e-9)
    return out * (NOTE_LEVEL * loud**1.5 * timbre.gain / peak)


OVERSAMPLE = 3  # overdrive is computed at this multiple of the sample rate (less aliasing)


def overdrive(wav: np.ndarray, drive: float, sample_rate: int) -> np.ndarray:
    """A ``tanh`` waveshaper (a guitar amplifier's overdrive): ``p tanh(drive x / p) / tanh(drive)`` with
    ``p`` the peak of ``wav`` (float ``[samples]``), so the peak level is kept while quieter parts are
    raised and every sound gains odd upper partials (a chord: sum and difference tones too). Computed at
    :data:`OVERSAMPLE` x ``sample_rate`` (soxr resampling up and back, whose low-pass also removes what
    lies above the Nyquist frequency of ``sample_rate``): float64 ``[samples]``."""
    import soxr

    peak = float(np.abs(wav).max())
    if drive <= 0 or peak == 0:
        return wav
    high = soxr.resample(wav, sample_rate, OVERSAMPLE * sample_rate)
    shaped = peak * np.tanh(drive * high / peak) / np.tanh(drive)
    return soxr.resample(shaped, OVERSAMPLE * sample_rate, sample_rate)[: len(wav)]


def synthesize(
    notes: np.ndarray, voices: np.ndarray, timbres: list[Timbre], sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Render notes float ``[n, 4]`` rows (start s, end s, MIDI pitch, velocity) of the voices ``voices``
    (int ``[n]``, indices into ``timbres``) by :func:`synthesize_note`, each voice's sum through
    :func:`overdrive` when its timbre has a ``drive``: float32 ``[samples]``, as long as the last note's
    release."""
    ends = [
        int(s * sample_rate) + note_samples(e - s, timbres[v], sample_rate)
        for (s, e, _, _), v in zip(notes, voices, strict=True)
    ]
    length = max(ends, default=1)
    out = np.zeros(length)
    for v in np.unique(voices):
        voice = np.zeros(length)
        for start, end, pitch, velocity in notes[voices == v]:
            wave = synthesize_note(pitch, velocity, end - start, timbres[v], sample_rate, rng)
            first = int(start * sample_rate)
            voice[first : first + len(wave)] += wave
        out += overdrive(voice, timbres[v].drive, sample_rate)
    return out.astype(np.float32)


def room(wav: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """``wav`` (float ``[samples]``) with a synthetic room: exponentially decaying white noise as the
    impulse response (RT60 0.2..2 s), mixed 10..50 % wet: float32 ``[samples]``."""
    from scipy.signal import fftconvolve

    rt60 = _log_uniform(rng, 0.2, 2.0)
    n = int(rt60 * sample_rate)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    ir /= np.sqrt(np.sum(ir**2))
    wet = fftconvolve(wav, ir)[: len(wav)]
    mix = float(rng.uniform(0.1, 0.5))
    return ((1 - mix) * wav + mix * wet).astype(np.float32)

"""What one General MIDI program sounds like through each rendering engine: the level of the partials
of a single held note at 0.5, 1, 2, 3, 4 and 6 times the written pitch's frequency, in dB against the
written pitch (magnitude spectrum of 0.3-1.3 s after the onset, Hann window, the strongest bin within
3 bins of each frequency).

Made for the transcriber's held-out engines: freepats' church organ (program 19, the JSB chorales'
program) sounds a 16-foot rank an octave below the written pitch about as loud as the written one
(at C4 louder), where the held-out SoundFont's organ (MuseScore General) has nothing there; two
training SoundFonts (TimGM6mb, sf_GMbank) have such a rank a little quieter. Most of the
transcriber's false notes on the TiMidity chorales are that octave below (the transcriber's model
card, session 21).

Usage: ``python bench/engine_partials.py [--program 19] [--pitches 48,60,72]`` (every installed
SoundFont through FluidSynth, and TiMidity++ with freepats when installed; a few seconds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from notewave.bridge.render import render_midi  # noqa: E402
from notewave.bridge.timidity import render_timidity, timidity_binary  # noqa: E402
from notewave.bridge.transcription.augment import installed_soundfonts  # noqa: E402
from notewave.errors import RenderError  # noqa: E402

RATIOS = (0.5, 1, 2, 3, 4, 6)
RATE = 22050


def one_note(program: int, pitch: int):
    """A score of one 2-second note of ``program`` at ``pitch``, velocity 100."""
    from symusic import Note, Score, Tempo, Track

    score = Score(480)
    score.tempos.append(Tempo(0, 120.0))
    track = Track(program=program)
    track.notes.append(Note(0, 1920, pitch, 100))
    score.tracks.append(track)
    return score


def partial_levels(wav: np.ndarray, pitch: int) -> list[float]:
    """dB of each of :data:`RATIOS` x the pitch's frequency against the pitch's own, in ``wav`` (float
    ``[samples]`` at :data:`RATE` Hz)."""
    x = wav[int(0.3 * RATE) : int(1.3 * RATE)]
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    hz = np.fft.rfftfreq(len(x), 1 / RATE)
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)

    def level(f: float) -> float:
        i = int(np.argmin(np.abs(hz - f)))
        return float(mag[max(0, i - 3) : i + 4].max())

    ref = max(level(f0), 1e-12)
    return [20 * np.log10(max(level(r * f0), 1e-12) / ref) for r in RATIOS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", type=int, default=19, help="General MIDI program 0-127 (default 19)")
    parser.add_argument("--pitches", default="48,60,72", help="MIDI pitches, comma-separated")
    args = parser.parse_args(argv)
    pitches = [int(p) for p in args.pitches.split(",")]
    engines = [
        (f"FluidSynth {p.name}", lambda s, p=p: render_midi(s, RATE, soundfont=p))
        for p in installed_soundfonts()
    ]
    try:
        timidity_binary()
        engines.append(("TiMidity++ freepats", lambda s: render_timidity(s, RATE)))
    except RenderError:
        pass
    print(f"program {args.program}: partials in dB against the written pitch\n")
    print(f"| engine | pitch | {' | '.join(f'{r:g} x f0' for r in RATIOS)} |")
    print("|---|---|" + "---|" * len(RATIOS))
    for name, render in engines:
        for pitch in pitches:
            wav, _ = render(one_note(args.program, pitch))
            cells = " | ".join(f"{v:+.0f}" for v in partial_levels(wav[0], pitch))
            print(f"| {name} | {pitch} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak memory (RSS) of ``notewave codec encode`` / ``decode`` on long real recordings.

Builds 44.1 kHz stereo 16-bit WAVs of 1, 5 and 10 minutes by concatenating the Wesnoth game
music (``apt-get install wesnoth-1.16-music``), then runs each CLI command in a fresh Python
process and reads its peak resident set size (``ru_maxrss``). Printed per input: the peak of
encode and decode, the peak of a process that only imports notewave and loads the codec (the
floor), and the ratio of the encode peak to the input's float32 size (samples x channels x 4 B).

Usage: ``python bench/codec_memory.py [--minutes 1 5 10] [--chunk-seconds 5] [--workdir /tmp/...]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

RATE, CHANNELS = 44100, 2
MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")

CHILD = """
import resource, sys
if sys.argv[1] == "floor":
    from notewave.audio.codec.model import Codec
    import notewave.cli
    Codec.from_pretrained()
else:
    from notewave.cli import main
    assert main(["codec", *sys.argv[1:]]) == 0
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
"""


def build_input(minutes: float, path: Path) -> Path:
    """A ``minutes`` long 44.1 kHz stereo PCM_16 WAV of the Wesnoth tracks played one after another."""
    if path.is_file() and sf.info(str(path)).frames == int(minutes * 60 * RATE):
        return path
    need = int(minutes * 60 * RATE)
    tracks = sorted(MUSIC.glob("*.ogg"))
    if not tracks:
        sys.exit(f"no Wesnoth music under {MUSIC}: apt-get install wesnoth-1.16-music")
    with sf.SoundFile(str(path), "w", RATE, CHANNELS, "PCM_16", format="WAV") as out:
        while need > 0:
            for track in tracks:
                info = sf.info(str(track))
                if need <= 0 or info.samplerate != RATE or info.channels != CHANNELS:
                    continue
                data, _ = sf.read(str(track), frames=need, dtype="float32", always_2d=True)
                out.write(data)
                need -= data.shape[0]
    return path


def peak_mib(*argv: str) -> float:
    """Peak RSS in MiB of a fresh Python process running :data:`CHILD` with ``argv``."""
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return int(done.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0, 10.0])
    parser.add_argument("--chunk-seconds", type=float, default=5.0, help="encode/decode window (s)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/notewave_codec_memory"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    chunk = ("--chunk-seconds", str(args.chunk_seconds))
    floor = peak_mib("floor")
    print(f"floor (import + load codec): {floor:.0f} MiB; window {args.chunk_seconds:g} s")
    print("| input | float32 size | encode peak | decode peak | encode peak / float32 size |")
    print("|---|---:|---:|---:|---:|")
    for minutes in args.minutes:
        wav = build_input(minutes, args.workdir / f"wesnoth_{minutes:g}min.wav")
        codes, out = args.workdir / f"{wav.stem}.npz", args.workdir / f"{wav.stem}_decoded.wav"
        size = sf.info(str(wav)).frames * CHANNELS * np.dtype(np.float32).itemsize / 2**20
        enc = peak_mib("encode", str(wav), str(codes), *chunk)
        dec = peak_mib("decode", str(codes), str(out), *chunk)
        print(f"| {minutes:g} min 44.1 kHz stereo | {size:.0f} MiB | {enc:.0f} MiB | {dec:.0f} MiB "
              f"| {enc / size:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()

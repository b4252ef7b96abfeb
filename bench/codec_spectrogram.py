"""A picture of the codec on held-out real music: log-mel spectrograms of one clip through each codec.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/codec_spectrogram.py [--track PATH] [--offset 60]
[--seconds 5] [--checkpoint data/checkpoints/codec ...] [--out docs/images/codec_spectrogram.png]``

Panels on one dB scale (:func:`notewave.audio.plot.draw_spectrogram`): the clip itself (default: a
held-out track of ``notewave data game-music``, never trained on), then the clip encoded and decoded
by each ``--checkpoint`` with all its codebooks, titled with the bitrate and the clip's mel distance
and SI-SDR (:mod:`notewave.audio.codec.metrics`), which are also printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from notewave.audio.codec.metrics import mel_distance, si_sdr
from notewave.audio.codec.model import DEFAULT_CODEC_CHECKPOINT, Codec
from notewave.audio.plot import save_spectrograms
from notewave.core.audio_io import load_audio
from notewave.paths import DATA_DIR

DEFAULT_TRACK = DATA_DIR / "audio" / "wesnoth" / "test" / "wanderer.flac"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", type=Path, default=DEFAULT_TRACK, help="audio file (default: held out)")
    parser.add_argument("--offset", type=float, default=60.0, help="start of the clip (s)")
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length (s)")
    parser.add_argument("--checkpoint", nargs="+", default=[str(DEFAULT_CODEC_CHECKPOINT)])
    parser.add_argument("--label", nargs="*", default=None, help="a panel title per checkpoint")
    parser.add_argument("--out", type=Path, default=Path("docs/images/codec_spectrogram.png"))
    args = parser.parse_args(argv)
    codecs = [Codec.from_pretrained(path) for path in args.checkpoint]
    rate = codecs[0].sample_rate
    wav, _ = load_audio(args.track, rate, offset=args.offset, duration=args.seconds)
    x = torch.from_numpy(wav).reshape(1, 1, -1)
    span = f"{args.offset:g}-{args.offset + args.seconds:g} s"
    panels = [(f"{args.track.stem}, {span}\n(held out, never trained on)", x)]
    labels = args.label or [str(path) for path in args.checkpoint]
    for codec, label in zip(codecs, labels):
        y = codec.decode(codec.encode(x))[..., : x.shape[-1]]
        mel, sdr = mel_distance(x, y, rate), si_sdr(x, y)
        print(f"{label}: {codec.bitrate():.1f} kbps, mel distance {mel:.3f}, SI-SDR {sdr:+.1f} dB")
        title = f"{label} ({codec.bitrate():.0f} kbps)\nmel distance {mel:.3f}, SI-SDR {sdr:+.1f} dB"
        panels.append((title, y))
    print(f"wrote {save_spectrograms([(title, a.numpy()) for title, a in panels], rate, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

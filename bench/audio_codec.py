"""Speed and quality of the notewave audio codec, against Opus at comparable bitrates.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/audio_codec.py [--checkpoint data/checkpoints/codec]
[--seconds 5] [--per-track 2] [--opus 6 12] [--threads 1] [--chorales 8]``

Needs the real held-out music of ``apt-get install wesnoth-1.16-music`` (the 8 tracks the
codec never saw in training: every 5th file by sorted name) and opus-tools for the Opus rows.

Prints (1) encode and decode speed as multiples of real time (audio seconds per wall-clock
second, best of 3, batch 1, CPU, ``--threads`` torch threads) on a ``--speed-seconds`` clip,
and (2) a Markdown table over the held-out clips: our codec with 1..K codebooks and Opus at
each ``--opus`` bitrate, with bitrate (kbps; Opus: payload without the Ogg container),
multi-scale mel distance, multi-scale STFT distance, SI-SDR (dB), chroma cosine (argmax
chroma of input vs output: how much pitch survives) and codebook perplexity; (3) the same table on
FluidSynth renders of the first ``--chorales`` held-out JSB test chorales (seconds 5 to 10 of
each, loudness-normalised, the MIDI's own program: church organ), the melody benchmark's domain.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _timing import best_of

from notewave.audio.codec.metrics import evaluate_codec, format_table, heldout_clips
from notewave.audio.codec.model import DEFAULT_CODEC_CHECKPOINT, Codec
from notewave.audio.codec.train import WESNOTH_MUSIC, split_folder
from notewave.paths import JSB_MIDI_DIR


def chorale_clips(count: int, sample_rate: int) -> torch.Tensor:
    """float32 ``[count, 1, 5 s]``: seconds 5-10 of the first ``count`` JSB test chorales, rendered."""
    from notewave.bridge.render import render_midi

    files = sorted((JSB_MIDI_DIR / "test").glob("*.mid"))[:count]
    clips = []
    for f in files:
        wav = render_midi(f, sample_rate, normalize="loudness")[0][0]
        clips.append(torch.from_numpy(wav[5 * sample_rate : 10 * sample_rate].copy()))
    return torch.stack(clips)[:, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CODEC_CHECKPOINT)
    parser.add_argument("--seconds", type=float, default=5.0, help="held-out clip length (s)")
    parser.add_argument("--per-track", type=int, default=2, help="clips per held-out track")
    parser.add_argument(
        "--speed-seconds", type=float, default=10.0, help="clip length for the speed test (s)"
    )
    parser.add_argument("--opus", type=float, nargs="*", default=[6.0, 12.0], help="Opus bitrates (kbps)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--chorales", type=int, default=8, help="JSB test chorale renders (0: skip)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--plot", type=Path, default=None, help="codebook-usage bar plot PNG")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    codec = Codec.from_pretrained(args.checkpoint)
    params = sum(p.numel() for p in codec.parameters())
    print(
        f"codec {args.checkpoint}: {params / 1e6:.2f} M parameters, {codec.sample_rate} Hz, "
        f"hop {codec.hop_length}, {codec.frame_rate:g} Hz frames, "
        f"K={codec.num_codebooks} x N={codec.codebook_size}"
    )
    files = split_folder(WESNOTH_MUSIC)[1]
    clips, names = heldout_clips(files, codec.sample_rate, args.seconds, args.per_track)
    print(
        f"held-out: {len(files)} tracks ({', '.join(f.stem for f in files)}), "
        f"{len(names)} clips of {args.seconds:g} s"
    )

    wav = clips.reshape(-1)[: int(args.speed_seconds * codec.sample_rate)][None, None]
    codes = codec.encode(wav)
    enc = best_of(lambda: codec.encode(wav))
    dec = best_of(lambda: codec.decode(codes))
    seconds = wav.shape[-1] / codec.sample_rate
    print(f"\nspeed ({args.threads} thread(s), {seconds:.1f} s clip, batch 1):")
    print(f"  encode {seconds / enc:7.1f} x real time ({enc * 1000:.0f} ms)")
    print(f"  decode {seconds / dec:7.1f} x real time ({dec * 1000:.0f} ms)\n")

    start = time.perf_counter()
    result = evaluate_codec(
        codec, clips, n_q=range(1, codec.num_codebooks + 1), opus_bitrates=args.opus, plot=args.plot
    )
    print(format_table(result))
    print(
        f"\n(metrics over {result['clips']} clips, {result['seconds']} s; "
        f"{time.perf_counter() - start:.0f} s)"
    )
    if args.chorales:
        start = time.perf_counter()
        renders = chorale_clips(args.chorales, codec.sample_rate)
        result["chorales"] = evaluate_codec(
            codec, renders, n_q=sorted({1, codec.num_codebooks}), opus_bitrates=args.opus
        )
        print(f"\nFluidSynth renders of {len(renders)} JSB test chorales (seconds 5-10):\n")
        print(format_table(result["chorales"]))
        print(f"\n({time.perf_counter() - start:.0f} s)")
    if args.json:
        result.update(
            files=[str(f) for f in files], encode_x_realtime=seconds / enc, decode_x_realtime=seconds / dec
        )
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

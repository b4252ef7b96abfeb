"""Speed and quality of the notewave audio codec, against Opus at comparable bitrates.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/audio_codec.py [--checkpoint data/checkpoints/codec]
[--audio-root data/audio] [--seconds 5] [--per-track 2] [--opus 6] [--threads 1 2] [--repeats 5]
[--random medium:8] [--chorales 8] [--speed-only]``

(1) **Speed**: encode and decode of a ``--speed-seconds`` clip of held-out music (batch 1, CPU), as
multiples of real time (audio seconds per wall-clock second; best of ``--repeats`` after a warm-up),
at each ``--threads`` torch thread count, through the layers themselves (``modules``: how encode and
decode ran before :mod:`notewave.audio.codec.inference`; timed first, before the folded path tunes
the heap) and through the folded inference copy (``folded``: what ``encode`` / ``decode`` use), for
the checkpoint and for each ``--random NAME:K`` codec (a named size of ``notewave train codec`` with
K codebooks and random weights: the speed does not depend on the weights). The modules rows
run after the clips were loaded, whose large temporary arrays have already raised glibc's dynamic
mmap threshold, so they understate what a fresh process gains (``notewave codec encode``; time
two processes for that: on the 2-core test machine 40-49x encode, 34-38x decode before, 69-72x
and 72-74x after, one thread, shipped codec).

(2) **Quality** on held-out real music. With ``--audio-root`` (default ``data/audio``, written by
``notewave data game-music``): the held-out whole tracks ``<package>/test/*.flac`` of every package
(wesnoth, warzone2100, ufoai, hyperrogue, nexuiz), ``--per-track`` evenly spaced clips of
``--seconds`` each; one table per package and one over all clips, then the mel distance and chroma
cosine of every system per package side by side. Without that folder: the 8 held-out tracks of the
Wesnoth folder (``apt-get install wesnoth-1.16-music``; every 5th file by sorted name), as before.
Systems: our codec with 1..K codebooks (bitrate ``k * frame_rate * log2(N)``) and Opus
(``opusenc --bitrate B``, opus-tools) at each ``--opus`` bitrate, on the same clips in the same run.
Columns: bitrate (kbps; Opus: payload without the Ogg container), multi-scale mel distance,
multi-scale STFT distance, SI-SDR (dB), chroma cosine (argmax chroma of input vs output: how much
pitch survives) and codebook perplexity (:mod:`notewave.audio.codec.metrics`).

(3) The same table on FluidSynth renders of the first ``--chorales`` held-out JSB test chorales
(seconds 5 to 10 of each, loudness-normalised, the MIDI's own program: church organ), the melody
benchmark's domain.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _timing import best_of

from notewave.audio.codec.data import WESNOTH_MUSIC, split_folder
from notewave.audio.codec.metrics import (
    evaluate_codec,
    format_group_table,
    format_table,
    heldout_clips,
    package_clips,
)
from notewave.audio.codec.model import DEFAULT_CODEC_CHECKPOINT, Codec
from notewave.audio.codec.train import config_for
from notewave.paths import DATA_DIR, JSB_MIDI_DIR


def chorale_clips(count: int, sample_rate: int) -> torch.Tensor:
    """float32 ``[count, 1, 5 s]``: seconds 5-10 of the first ``count`` JSB test chorales, rendered."""
    from notewave.bridge.render import render_midi

    files = sorted((JSB_MIDI_DIR / "test").glob("*.mid"))[:count]
    clips = []
    for f in files:
        wav = render_midi(f, sample_rate, normalize="loudness")[0][0]
        clips.append(torch.from_numpy(wav[5 * sample_rate : 10 * sample_rate].copy()))
    return torch.stack(clips)[:, None]


def speed(codecs: dict[str, Codec], wav: torch.Tensor, threads: list[int], repeats: int) -> list[dict]:
    """Encode/decode x real time of ``wav [1, 1, N]`` per codec, thread count and path (modules first)."""
    rows = []
    seconds = wav.shape[-1] / next(iter(codecs.values())).sample_rate
    for fast in (False, True):  # the module path first: the folded one changes the heap settings
        for name, codec in codecs.items():
            codec.fast_inference = fast
            codes = codec.encode(wav)
            for n in threads:
                torch.set_num_threads(n)
                enc = best_of(lambda c=codec: c.encode(wav), repeats)
                dec = best_of(lambda c=codec, k=codes: c.decode(k), repeats)
                path = "folded" if fast else "modules"
                rows.append(
                    {
                        "codec": name,
                        "threads": n,
                        "path": path,
                        "encode": seconds / enc,
                        "decode": seconds / dec,
                    }
                )
    for codec in codecs.values():
        codec.fast_inference = True
    return rows


def print_speed(rows: list[dict], seconds: float) -> None:
    print(f"\nspeed ({seconds:.1f} s clip, batch 1, x real time; folded / modules in the same process):\n")
    heads = ["codec", "threads", "encode (modules)", "encode (folded)", "decode (modules)", "decode (folded)"]
    print("| " + " | ".join([*heads, "speed-up enc / dec"]) + " |\n" + "|---" * 7 + "|")
    for new in (r for r in rows if r["path"] == "folded"):
        old = next(
            r
            for r in rows
            if r["path"] == "modules" and r["codec"] == new["codec"] and r["threads"] == new["threads"]
        )
        up = f"{new['encode'] / old['encode']:.2f}x / {new['decode'] / old['decode']:.2f}x"
        print(f"| {new['codec']} | {new['threads']} | {old['encode']:.1f} | {new['encode']:.1f} | "
              f"{old['decode']:.1f} | {new['decode']:.1f} | {up} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CODEC_CHECKPOINT)
    root_help = "<package>/test/*.flac folders (absent: the Wesnoth folder's held-out tracks)"
    parser.add_argument("--audio-root", type=Path, default=DATA_DIR / "audio", help=root_help)
    parser.add_argument("--seconds", type=float, default=5.0, help="held-out clip length (s)")
    parser.add_argument("--per-track", type=int, default=2, help="clips per held-out track")
    parser.add_argument(
        "--speed-seconds", type=float, default=10.0, help="clip length for the speed test (s)"
    )
    parser.add_argument("--opus", type=float, nargs="*", default=[6.0], help="Opus bitrates (kbps)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per speed figure (best)")
    parser.add_argument("--random", nargs="*", default=["medium:8"], help="NAME:K random-weight codecs")
    parser.add_argument("--speed-only", action="store_true", help="only the speed table")
    parser.add_argument("--chorales", type=int, default=8, help="JSB test chorale renders (0: skip)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--plot", type=Path, default=None, help="codebook-usage bar plot PNG")
    args = parser.parse_args()

    codec = Codec.from_pretrained(args.checkpoint)
    params = sum(p.numel() for p in codec.parameters())
    print(
        f"codec {args.checkpoint}: {params / 1e6:.2f} M parameters, {codec.sample_rate} Hz, "
        f"hop {codec.hop_length}, {codec.frame_rate:g} Hz frames, "
        f"K={codec.num_codebooks} x N={codec.codebook_size}"
    )
    groups = None
    if args.audio_root.is_dir() and any(args.audio_root.glob("*/test/*.flac")):
        clips, names, groups = package_clips(args.audio_root, codec.sample_rate, args.seconds, args.per_track)
        files = sorted({str(args.audio_root / g / "test" / n.split("@")[0]) for g, n in zip(groups, names)})
        counts = {g: groups.count(g) for g in dict.fromkeys(groups)}
        print(f"held-out ({args.audio_root}): {len(files)} tracks, {len(names)} clips of {args.seconds:g} s")
        print(f"  clips per package: {counts}")
    else:
        files = split_folder(WESNOTH_MUSIC)[1]
        clips, names = heldout_clips(files, codec.sample_rate, args.seconds, args.per_track)
        print(f"held-out: {len(files)} tracks ({', '.join(Path(f).stem for f in files)}), "
              f"{len(names)} clips of {args.seconds:g} s")  # fmt: skip

    codecs = {f"{args.checkpoint.name} (K={codec.num_codebooks})": codec}
    for spec in args.random:
        name, k = spec.split(":")
        torch.manual_seed(0)
        codecs[f"random {name} (K={k})"] = Codec(config_for(name, num_codebooks=int(k))).eval()
    wav = clips.reshape(-1)[: int(args.speed_seconds * codec.sample_rate)][None, None]
    seconds = wav.shape[-1] / codec.sample_rate
    rows = speed(codecs, wav, args.threads, args.repeats)
    print_speed(rows, seconds)
    result: dict = {"speed": rows, "speed_seconds": seconds}
    if not args.speed_only:
        torch.set_num_threads(max(args.threads))
        start = time.perf_counter()
        n_q = range(1, codec.num_codebooks + 1)
        result.update(
            evaluate_codec(codec, clips, n_q=n_q, opus_bitrates=args.opus, plot=args.plot, groups=groups)
        )
        for name, part in result.get("groups", {}).items():
            print(f"\n{name}: {part['clips']} clips, {part['seconds']:g} s\n\n{format_table(part)}")
        print(f"\nall held-out clips: {result['clips']} clips, {result['seconds']:g} s\n")
        print(format_table(result))
        if groups:
            for metric in ("mel", "chroma"):
                print(f"\n{metric} per package:\n\n{format_group_table(result, metric)}")
        print(f"\n({time.perf_counter() - start:.0f} s)")
    if args.chorales and not args.speed_only:
        start = time.perf_counter()
        renders = chorale_clips(args.chorales, codec.sample_rate)
        result["chorales"] = evaluate_codec(
            codec,
            renders,
            n_q=sorted({1, codec.config.num_codebooks, codec.num_codebooks}),
            opus_bitrates=args.opus,
        )
        print(f"\nFluidSynth renders of {len(renders)} JSB test chorales (seconds 5-10):\n")
        print(format_table(result["chorales"]))
        print(f"\n({time.perf_counter() - start:.0f} s)")
    if args.json:
        result["files"] = [str(f) for f in files]
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()

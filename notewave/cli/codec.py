"""``notewave codec encode|decode|eval``: audio <-> code files, codec metrics vs Opus."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from notewave.audio.codec.data import WESNOTH_MUSIC, split_folder
from notewave.audio.codec.files import load_codes, save_codes
from notewave.audio.codec.model import CHUNK_SECONDS, DEFAULT_CODEC_CHECKPOINT, Codec
from notewave.core.audio_io import load_audio
from notewave.core.io import atomic_open, atomic_path
from notewave.errors import AudioError


def _encode_cli(args: argparse.Namespace) -> int:
    codec = Codec.from_pretrained(args.checkpoint)
    wav, _ = load_audio(args.input, codec.sample_rate)  # mono float32, read and resampled in blocks
    codes = codec.encode(torch.from_numpy(wav)[None], args.n_q, chunk_seconds=args.chunk_seconds)
    save_codes(args.output, codes, codec, num_samples=wav.shape[-1])
    k, t = codes.shape[1:]
    print(f"{args.output}: {k} x {t} codes ({t / codec.frame_rate:.2f} s, {codec.bitrate(k):.2f} kbps)")
    return 0


def write_decoded(
    path: str | os.PathLike[str],
    codec: Codec,
    codes: torch.Tensor,
    num_samples: int,
    chunk_seconds: float | None = CHUNK_SECONDS,
) -> int:
    """Decode codes int ``[K, T]`` in windows of ``chunk_seconds`` into a 16-bit mono WAV at
    ``codec.sample_rate``, written atomically and cut to ``num_samples`` samples; returns the
    samples written. Only one window of audio is in memory at a time.

    Raises:
        ConfigError: codes the codec cannot decode. AudioError: the file cannot be written.
    """
    import soundfile as sf

    pieces, left = codec.decode_chunks(codes[None], chunk_seconds), int(num_samples)
    try:
        with (
            atomic_path(path) as tmp,
            sf.SoundFile(tmp, "w", codec.sample_rate, 1, "PCM_16", format="WAV") as out,
        ):
            for piece in pieces:
                block = piece[0, 0, :left].cpu().numpy()
                out.write(block)
                left -= block.shape[0]
    except (OSError, sf.SoundFileError) as exc:
        raise AudioError(f"cannot write {path}: {exc}") from exc
    return int(num_samples) - left


def _decode_cli(args: argparse.Namespace) -> int:
    codec = Codec.from_pretrained(args.checkpoint)
    codes, meta = load_codes(args.input, codec)
    samples = write_decoded(args.output, codec, codes, meta["num_samples"], args.chunk_seconds)
    print(f"{args.output}: {samples / codec.sample_rate:.2f} s at {codec.sample_rate} Hz")
    return 0


def _eval_cli(args: argparse.Namespace) -> int:
    from notewave.audio.codec.metrics import evaluate_codec, format_table, heldout_clips

    codec = Codec.from_pretrained(args.checkpoint)
    files = [Path(f) for f in args.audio] if args.audio else split_folder(WESNOTH_MUSIC)[1]
    if not files:
        raise AudioError("no held-out audio files to evaluate on")
    clips, _ = heldout_clips(files, codec.sample_rate, args.seconds, args.per_track)
    result = evaluate_codec(
        codec, clips, n_q=range(1, codec.num_codebooks + 1), opus_bitrates=args.opus, plot=args.plot
    )
    result["files"] = [str(f) for f in files]
    print(format_table(result))
    if args.json:
        with atomic_open(args.json) as handle:
            json.dump(result, handle, indent=2)
    return 0


def add_codec_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave codec encode|decode|eval`` on the top-level subparsers; returns the parser."""
    p = subparsers.add_parser(
        "codec", help="encode audio to codes, decode codes to audio, evaluate the codec"
    )
    sub = p.add_subparsers(dest="codec_command", metavar="ACTION", required=True)
    enc = sub.add_parser("encode", help="audio file -> .npz codes (mono, resampled to the codec rate)")
    enc.add_argument("input", metavar="IN", help="audio file (WAV, FLAC, OGG, ...)")
    enc.add_argument("output", metavar="OUT.npz", help="code file to write")
    enc.add_argument("--n-q", type=int, default=None, help="codebooks to keep (default: all)")
    enc.set_defaults(func=_encode_cli)
    dec = sub.add_parser("decode", help=".npz codes -> WAV (checks that this codec made them)")
    dec.add_argument("input", metavar="IN.npz")
    dec.add_argument("output", metavar="OUT.wav")
    dec.set_defaults(func=_decode_cli)
    ev = sub.add_parser("eval", help="metrics vs Opus on held-out audio (default: held-out Wesnoth tracks)")
    ev.add_argument("--audio", nargs="+", default=None, metavar="FILE", help="audio files to evaluate on")
    ev.add_argument("--seconds", type=float, default=5.0, help="clip length in seconds (default 5)")
    ev.add_argument("--per-track", type=int, default=2, help="clips per file (default 2)")
    ev.add_argument("--opus", type=float, nargs="*", default=[6.0], help="Opus bitrates in kbps (default 6)")
    ev.add_argument("--plot", type=Path, default=None, help="codebook-usage bar plot PNG")
    ev.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    ev.set_defaults(func=_eval_cli)
    for action in (enc, dec):
        action.add_argument(
            "--chunk-seconds", type=float, default=CHUNK_SECONDS,
            help=f"work in windows of this many seconds (bounds memory; default {CHUNK_SECONDS:g})",
        )  # fmt: skip
    for action in (enc, dec, ev):
        action.add_argument("--checkpoint", type=Path, default=DEFAULT_CODEC_CHECKPOINT, help="codec folder")
    return p

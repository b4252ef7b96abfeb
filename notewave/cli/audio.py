"""CLI commands of the audio side: ``train codec``, ``train audio-lm`` and ``generate-audio``
(``notewave codec encode|decode|eval`` is in :mod:`notewave.cli.codec`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from notewave.audio.codec.data import WESNOTH_MUSIC
from notewave.audio.codec.train import CONFIGS as CODEC_CONFIGS
from notewave.audio.codec.train import train_codec
from notewave.audio.lm.data import DEFAULT_AUDIO_TEXT, DEFAULT_MIDI_TEXT
from notewave.audio.lm.train import train_audio_lm
from notewave.cli.options import add_precision_option
from notewave.paths import DEFAULT_AUDIO_CHECKPOINT


def _train_codec(args: argparse.Namespace) -> int:
    overrides = {"num_codebooks": args.num_codebooks, "codebook_size": args.codebook_size}
    overrides |= {
        "decoder": args.decoder,
        "decoder_dim": args.decoder_dim,
        "decoder_layers": args.decoder_layers,
    }
    overrides |= {f"detail_{k}": getattr(args, f"detail_{k}") for k in ("codebooks", "dim", "layers")}
    summary = train_codec(
        args.out,
        args.audio or (),
        args.midi or (),
        config=args.config,
        steps=args.steps,
        segment=args.segment,
        batch_size=args.batch_size,
        lr=args.lr,
        adversarial=args.adversarial,
        adversarial_every=args.adversarial_every,
        disc_filters=args.disc_filters,
        resume=args.resume,
        init=args.init,
        eval_every=args.eval_every,
        holdout_every=args.holdout_every,
        max_seconds=args.max_seconds,
        soundfont=args.soundfont,
        seed=args.seed,
        precision=args.precision,
        overrides=overrides,
        si_sdr_weight=args.si_sdr_weight,
        freeze_codes=args.freeze_codes,
    )
    print(json.dumps({k: v for k, v in summary.items() if k not in ("history", "config")}, indent=2))
    print(
        f"checkpoints: {Path(args.out) / 'best'} (lowest validation mel distance), {Path(args.out) / 'last'}"
    )
    return 0


def add_train_codec_cli(train_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave train codec`` on the ``train`` command's subparsers; returns the parser."""
    p = train_subparsers.add_parser(
        "codec",
        help="train the audio codec (SEANet encoder, RVQ, SEANet or Fourier decoder)",
        description="Train the audio codec on audio files and/or FluidSynth renders of MIDI files. Every "
        "5th file of each folder (sorted by path) is held out for validation.",
    )
    p.add_argument(
        "--audio", action="append", metavar="DIR", help=f"audio folder (repeatable), e.g. {WESNOTH_MUSIC}"
    )
    p.add_argument(
        "--midi", action="append", metavar="DIR", help="MIDI folder rendered with FluidSynth (repeatable)"
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints best/ and last/)")
    p.add_argument(
        "--config", default="small", choices=sorted(CODEC_CONFIGS), help="model size (default small)"
    )
    p.add_argument("--num-codebooks", type=int, default=None, help="K (default: from --config)")
    p.add_argument("--codebook-size", type=int, default=None, help="N (default: from --config)")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    p.add_argument("--segment", type=float, default=1.0, help="crop length in seconds (default 1.0)")
    p.add_argument("--batch-size", type=int, default=8, help="crops per step and process (default 8)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--adversarial", action="store_true", help="add the MS-STFT discriminator (slow on CPU)")
    p.add_argument(
        "--adversarial-every", type=int, default=1, help="adversarial terms on every N-th step (default 1)"
    )
    p.add_argument("--disc-filters", type=int, default=32, help="channels per STFT critic (default 32)")
    p.add_argument(
        "--si-sdr-weight",
        type=float,
        default=0.0,
        help="weight of minus the waveform's SI-SDR (dB) beside the spectral losses (default 0: off)",
    )
    p.add_argument("--init", default=None, help="start from this codec checkpoint's matching weights")
    p.add_argument(
        "--decoder",
        default=None,
        choices=["seanet", "fourier"],
        help="decoder kind (default: --init's, else seanet; fourier: Vocos-style ConvNeXt + inverse STFT)",
    )
    p.add_argument("--decoder-dim", type=int, default=None, help="fourier decoder width (default 256)")
    p.add_argument("--decoder-layers", type=int, default=None, help="fourier decoder blocks (default 8)")
    p.add_argument(
        "--detail-codebooks",
        type=int,
        default=None,
        help="codebooks of a detail stream after the main ones (fourier decoder; default 0: none)",
    )
    p.add_argument("--detail-dim", type=int, default=None, help="detail stream latent size (default 32)")
    p.add_argument("--detail-layers", type=int, default=None, help="detail encoder blocks (default 3)")
    p.add_argument(
        "--freeze-codes",
        action="store_true",
        help="train the decoder (and a detail stream) on the codes of --init's encoder and RVQ "
        "(they stay unchanged)",
    )
    p.add_argument(
        "--eval-every", type=int, default=250, help="validate and save every N steps (default 250)"
    )
    p.add_argument("--holdout-every", type=int, default=5, help="hold out every N-th file (default 5)")
    p.add_argument(
        "--max-seconds", type=float, default=None, help="read at most this much of each audio file"
    )
    p.add_argument("--soundfont", default=None, help="SoundFont for --midi (default: found automatically)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--seed", type=int, default=0)
    add_precision_option(p)
    p.set_defaults(func=_train_codec)
    return p


def _train_audio_lm(args: argparse.Namespace) -> int:
    summary = train_audio_lm(
        args.codec, args.out, audio=args.audio or (), midi=args.midi or (), config=args.config,
        pattern=args.pattern, segment=args.segment, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        eval_every=args.eval_every, resume=args.resume, text=not args.no_text, melody=not args.no_melody,
        cond_dropout=args.cond_dropout, chroma_downsample=args.chroma_downsample,
        melody_fuse=args.melody_fuse, audio_text=args.audio_text, midi_text=args.midi_text,
        max_files=args.max_files, max_seconds=args.max_seconds, seed=args.seed,
        precision=args.precision, num_codebooks=args.num_codebooks,
    )  # fmt: skip
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    print(f"checkpoints: {Path(args.out) / 'best'} (lowest validation loss), {Path(args.out) / 'last'}")
    return 0


def add_train_audio_lm_cli(train_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave train audio-lm``."""
    from notewave.audio.lm.conditioning import MELODY_FUSES
    from notewave.audio.lm.patterns import PATTERNS

    p = train_subparsers.add_parser(
        "audio-lm",
        help="train the codec-token language model (melody/text/style conditioned)",
        description="Train an AudioLM on the codes of a frozen codec. Audio and MIDI folders may end in "
        ":STYLE to set their style tag (default: the folder name); MIDI files are rendered with FluidSynth.",
    )
    p.add_argument("--codec", required=True, type=Path, help="codec checkpoint or codec run folder")
    p.add_argument("--audio", action="append", metavar="DIR[:STYLE]", help="audio folder (repeatable)")
    p.add_argument(
        "--midi", action="append", metavar="DIR[:STYLE]", help="MIDI folder, rendered (repeatable)"
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (best/, last/, data cache)")
    p.add_argument("--config", default="small", help="model size: tiny, small, medium, large (default small)")
    p.add_argument("--pattern", default="delay", choices=PATTERNS, help="codebook pattern (default delay)")
    p.add_argument(
        "--num-codebooks", type=int, default=None, help="model the codec's first K codebooks (default: all)"
    )
    p.add_argument("--segment", type=float, default=5.0, help="training window in seconds (default 5)")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--no-text", action="store_true", help="train without text conditioning")
    p.add_argument("--no-melody", action="store_true", help="train without melody conditioning")
    p.add_argument("--cond-dropout", type=float, default=0.3, help="per-condition dropout (default 0.3)")
    p.add_argument("--chroma-downsample", type=int, default=2, help="codec frames per melody position")
    p.add_argument(
        "--melody-fuse", default="prefix", choices=MELODY_FUSES,
        help="prefix: melody positions before the steps (MusicGen-melody); sum: each step's input gets "
        "the chroma of the frame it writes (default prefix)",
    )  # fmt: skip
    p.add_argument("--audio-text", default=DEFAULT_AUDIO_TEXT, help="text of audio tracks ({title}, {style})")
    p.add_argument("--midi-text", default=DEFAULT_MIDI_TEXT, help="text of MIDI renders")
    p.add_argument("--max-files", type=int, default=None, help="at most N training files per folder")
    p.add_argument("--max-seconds", type=float, default=None, help="use at most S seconds of each file")
    p.add_argument("--seed", type=int, default=0)
    add_precision_option(p)
    p.set_defaults(func=_train_audio_lm)
    return p


def _generate_audio(args: argparse.Namespace) -> int:
    from notewave.bridge.render import write_wav
    from notewave.pipelines.sound import SoundGenerator

    sound = SoundGenerator.from_pretrained(args.checkpoint)
    wav, rate = sound.generate(
        melody=args.melody, text=args.text, style=args.style, seconds=args.seconds,
        prompt_audio=args.prompt_audio, cfg_coef=args.cfg_coef, temperature=args.temperature,
        top_k=args.top_k or None, top_p=args.top_p, seed=args.seed, progress=True,
    )  # fmt: skip
    write_wav(args.out, wav, rate)
    print(f"WAV: {args.out} ({wav.shape[-1] / rate:.2f} s at {rate} Hz)")
    return 0


def add_generate_audio_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``notewave generate-audio``."""
    p = subparsers.add_parser(
        "generate-audio",
        help="generate audio from a melody sketch, text and style with the audio LM",
        description="Generate audio with the codec language model, conditioned on a melody "
        "(MIDI or audio sketch), a text description and a style tag, optionally continuing an audio prompt.",
    )
    p.add_argument("--melody", type=Path, default=None, help="melody sketch: .mid or audio file (.wav, ...)")
    p.add_argument("--text", default=None, help='text description, e.g. "Bach chorale, church organ"')
    p.add_argument("--style", default=None, help="style tag the model was trained with")
    p.add_argument(
        "--prompt-audio", type=Path, default=None, help="audio file to continue (kept at the start)"
    )
    p.add_argument(
        "--seconds", type=float, required=True, help="output duration in seconds (prompt included)"
    )
    p.add_argument("--out", type=Path, required=True, help="output WAV file")
    p.add_argument(
        "--cfg-coef", type=float, default=3.0, help="classifier-free guidance (default 3; 1 = off)"
    )
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=250, help="top-k sampling (0: off; default 250)")
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_AUDIO_CHECKPOINT, help="audio LM folder")
    p.set_defaults(func=_generate_audio)
    return p

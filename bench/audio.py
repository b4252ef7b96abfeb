"""Speed of the audio stack: the shipped LM + codec end to end, codec, LM per codebook pattern, KV cache.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/audio.py [--threads 1 2] [--gen-seconds 5] [--repeats 3]
[--seconds 2] [--config small]``

* Shipped generation (``data/checkpoints/audio`` with its codec): ``--gen-seconds`` of audio from the
  melody of the first JSB test chorale, a text and a style, CFG 3, top-k 250, seed 0, batch 1, at
  each ``--threads`` torch thread count; wall time of the conditioning (melody chroma, style, text
  embedding, cached after the first call; the first call, which loads the sentence-embedding model,
  is reported once), the LM steps (prefill + KV-cache steps, CFG batch of 2) and the codec decode;
  best of ``--repeats``. Two paths in the same process, alternating: ``reference`` = the
  model's forward per step and the codec's modules (how generation ran before
  :mod:`notewave.audio.lm.step` and :mod:`notewave.audio.codec.inference`), ``lean`` = what
  :class:`~notewave.pipelines.SoundGenerator` runs now; both give the same codes (checked). The
  heap setting of the folded codec (:func:`~notewave.audio.codec.inference.retain_freed_memory`) is
  process-wide, so after the first lean run the reference decode has it too (``bench/audio_codec.py``
  times the codec's modules before it).
  "x real time" = audio seconds / wall seconds (> 1: faster than real time).
* Codec (only when ``data/checkpoints/codec`` exists): encode and decode of 10 s of real music
  (Wesnoth "battle", or noise when the Debian package is missing), in x real time.
* LM per pattern (parallel, delay, flatten, coarse_first): **random-weight** LMs of the named size
  (default ``small``: d_model 128, 4 layers) over the shipped codec's K and N (4 x 1024 by
  default), generating ``--seconds`` of codes unconditionally with CFG 1 and with CFG 3 (batch
  2), KV cache on. Weights do not change the speed, so untrained models are fine for comparing
  patterns. Columns: decoding steps per second of audio, generation wall time and real-time
  factor (RTF = wall time / audio duration; < 1 is faster than real time). Codec decoding is not
  included (see the codec rows).
* KV-cache speed-up: the same generation recomputing the whole sequence at every step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _timing import best_of

from notewave.audio.codec.model import Codec, CodecConfig
from notewave.audio.lm.conditioning import ConditionConfig, Conditions, build_conditions
from notewave.audio.lm.generate import generate_codes
from notewave.audio.lm.melody import melody_chroma
from notewave.audio.lm.model import AudioLM
from notewave.audio.lm.patterns import PATTERNS
from notewave.audio.lm.train import config_for
from notewave.core.sampling import sample
from notewave.paths import DATA_DIR, JSB_MIDI_DIR

WESNOTH = "/usr/share/games/wesnoth/1.16/data/core/music/battle.ogg"


@torch.no_grad()
def generate_without_cache(model: AudioLM, cond: Conditions, frames: int, seed: int = 0) -> torch.Tensor:
    """The decoding loop of :func:`notewave.audio.lm.generate.generate_window` (CFG 1) without a KV cache."""
    g = torch.Generator().manual_seed(seed)
    layout = model.pattern.step_positions(frames)
    seq = torch.full((1, model.num_codebooks, layout.shape[1]), model.special, dtype=torch.long)
    for step in range(layout.shape[1]):
        logits = model(model.input_tokens(seq)[:, :, : step + 1], cond)[:, :, -1]
        drawn = sample(logits.reshape(model.num_codebooks, -1), top_k=250, generator=g).view(1, -1)
        seq[:, :, step] = torch.where(layout[:, step] >= 0, drawn, seq[:, :, step])
    return model.pattern.revert(seq, frames)


def shipped_generation(seconds: float, threads: list[int], repeats: int) -> None:
    """The table of the shipped LM + codec (see the module docstring)."""
    from notewave.pipelines.sound import SoundGenerator

    sound = SoundGenerator.from_pretrained()
    lm, codec = sound.lm, sound.codec
    frames = max(1, round(seconds * lm.frame_rate))
    chorale = sorted((JSB_MIDI_DIR / "test").glob("*.mid"))[0]
    text = "organ chorale" if lm.config.conditions.text else None
    style = (lm.config.conditions.styles or [None])[0]

    def run(lean: bool) -> tuple[list[float], torch.Tensor]:
        codec.fast_inference = lean
        start = time.perf_counter()
        chroma = melody_chroma(chorale, lm.sample_rate, lm.frame_rate)[:, :frames]
        cond = build_conditions(lm.config.conditions, frames, chroma, text, style)
        cond_done = time.perf_counter()
        generator = torch.Generator().manual_seed(0)
        codes = generate_codes(lm, cond, frames, cfg_coef=3.0, top_k=250, generator=generator, lean=lean)
        codes_done = time.perf_counter()
        codec.decode(codes)
        parts = [cond_done - start, codes_done - cond_done, time.perf_counter() - codes_done]
        return [*parts, sum(parts)], codes

    first, _ = run(False)
    print(f"\nshipped LM + codec, {seconds:g} s ({frames} frames), CFG 3, melody of {chorale.name}, "
          f"text {text!r}, style {style!r}")  # fmt: skip
    print(f"first call {first[3]:.2f} s, of which conditioning {first[0]:.2f} s (loads the text model)")
    print("\n| threads | path | conditioning s | LM steps s | codec decode s | total s | x real time |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    codes = {}
    for n in threads:  # the two paths alternate, so that a change of load hits both
        torch.set_num_threads(n)
        runs: dict[bool, list] = {False: [], True: []}
        for _ in range(repeats + 1):
            for lean in (False, True):
                runs[lean].append(run(lean))
        for lean in (False, True):
            best, codes[lean] = min(runs[lean][1:], key=lambda r: r[0][3])
            cells = " | ".join(f"{v:.3f}" for v in best)
            print(f"| {n} | {'lean' if lean else 'reference'} | {cells} | {seconds / best[3]:.2f} |")
    torch.set_num_threads(threads[0])
    print(f"\nsame codes on both paths: {torch.equal(codes[False], codes[True])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="audio generated per run (default 2)")
    parser.add_argument("--config", default="small", help="LM size (default small)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    parser.add_argument("--gen-seconds", type=float, default=5.0, help="shipped generation (s; 0: skip)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure (best)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads[0])
    print(f"torch {torch.__version__}, CPU")
    if args.gen_seconds > 0 and (DATA_DIR / "checkpoints" / "audio" / "config.json").is_file():
        shipped_generation(args.gen_seconds, args.threads, args.repeats)
    torch.manual_seed(0)
    shipped = DATA_DIR / "checkpoints" / "codec"
    have_codec = (shipped / "config.json").is_file()
    codec = Codec.from_pretrained(shipped) if have_codec else Codec(CodecConfig()).eval()
    print(f"\nthreads {torch.get_num_threads()} from here on")

    if have_codec:
        from notewave.core.audio_io import load_audio

        try:
            wav, _ = load_audio(WESNOTH, codec.sample_rate, offset=20.0, duration=10.0)
        except Exception:
            wav = (0.1 * np.random.default_rng(0).standard_normal((1, 10 * codec.sample_rate))).astype(
                np.float32
            )
        x = torch.from_numpy(wav)[None]
        seconds = x.shape[-1] / codec.sample_rate
        codes = codec.encode(x)
        enc = best_of(lambda: codec.encode(x))
        dec = best_of(lambda: codec.decode(codes))
        print("\n| codec (shipped) | wall s for 10 s | x real time |")
        print("| --- | --- | --- |")
        print(f"| encode | {enc:.3f} | {seconds / enc:.1f} |")
        print(f"| decode | {dec:.3f} | {seconds / dec:.1f} |")
    else:
        print("\n(no codec at data/checkpoints/codec: codec rows skipped)")

    frames = max(1, round(args.seconds * codec.frame_rate))
    print(
        f"\nLM: random-weight '{args.config}' models, K={codec.num_codebooks}, N={codec.codebook_size}, "
        f"{codec.frame_rate:g} Hz frames; {args.seconds:g} s = {frames} frames, window 5 s, top-k 250"
    )
    print(
        "\n| pattern | steps per s of audio | wall s (CFG 1) | RTF (CFG 1) | wall s (CFG 3) | RTF (CFG 3) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    conditions = ConditionConfig(["demo"], text=True, melody=True)
    models = {}
    for pattern in PATTERNS:
        model = AudioLM(config_for(args.config, codec, pattern, 5.0, conditions)).eval()
        models[pattern] = model
        cond = Conditions.empty(1, frames)
        times = [
            best_of(lambda m=model, c=cond, g=cfg: generate_codes(m, c, frames, cfg_coef=g), repeats=1)
            for cfg in (1.0, 3.0)
        ]
        steps = model.pattern.num_steps(frames) / args.seconds
        print(
            f"| {pattern} | {steps:.0f} | {times[0]:.2f} | {times[0] / args.seconds:.2f} | "
            f"{times[1]:.2f} | {times[1] / args.seconds:.2f} |"
        )

    print("\n| KV cache (delay, CFG 1) | wall s | speed-up |")
    print("| --- | --- | --- |")
    model = models["delay"]
    cond = Conditions.empty(1, frames)
    cached = best_of(
        lambda: generate_codes(model, cond, frames, cfg_coef=1.0, generator=torch.Generator().manual_seed(0)),
        repeats=1,
    )
    uncached = best_of(lambda: generate_without_cache(model, cond, frames), repeats=1)
    print(f"| with cache | {cached:.2f} | 1.0 |")
    print(f"| without cache | {uncached:.2f} | {uncached / cached:.2f}x slower |")


if __name__ == "__main__":
    main()

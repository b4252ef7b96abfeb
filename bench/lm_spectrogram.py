"""A picture of the audio LM against FluidSynth: log-mel spectrograms of one held-out melody.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/lm_spectrogram.py [--piece 0] [--seconds 8]
[--checkpoint data/checkpoints/audio] [--out docs/images/audio_lm_vs_render.png]``

For the JSB test chorale ``--piece`` (never trained on), three panels on one dB scale
(:func:`notewave.audio.plot.draw_spectrogram`): the FluidSynth render of its first ``--seconds``
seconds (General MIDI church organ, the default SoundFont), that render encoded and decoded by the
LM's codec with the LM's codebooks (what the codes can carry), and the audio LM's output with the
chorale as melody condition (argmax chroma from the MIDI), text "Bach chorale, church organ",
style ``bach``, classifier-free guidance 3, seed 0. Prints the chroma cosine of each panel against
the melody condition (as in ``bench/melody_adherence.py``) and where the PNG was written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from notewave.audio.plot import save_spectrograms
from notewave.bridge.chroma import chroma_from_audio, chroma_from_midi, chroma_similarity
from notewave.bridge.render import render_midi
from notewave.paths import DEFAULT_AUDIO_CHECKPOINT, JSB_MIDI_DIR
from notewave.pipelines.sound import SoundGenerator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(DEFAULT_AUDIO_CHECKPOINT))
    parser.add_argument("--piece", type=int, default=0, help="index of the JSB test chorale (default 0)")
    parser.add_argument("--seconds", type=float, default=8.0, help="excerpt length in seconds (default 8)")
    parser.add_argument("--out", type=Path, default=Path("docs/images/audio_lm_vs_render.png"))
    args = parser.parse_args(argv)
    midi = sorted((JSB_MIDI_DIR / "test").glob("*.mid"))[args.piece]
    sound = SoundGenerator.from_pretrained(args.checkpoint)
    rate, frame_rate = sound.lm.sample_rate, sound.lm.frame_rate
    samples = round(args.seconds * rate)
    render, _ = render_midi(midi, sample_rate=rate, max_seconds=None)
    render = render.mean(axis=0)[:samples] if render.ndim == 2 else render[:samples]
    with torch.no_grad():
        x = torch.from_numpy(render).view(1, 1, -1)
        through = sound.codec.decode(sound.codec.encode(x, n_q=sound.lm.num_codebooks))[0, 0, :samples]
    generated, _ = sound.generate(
        melody=midi,
        text="Bach chorale, church organ",
        style="bach",
        seconds=args.seconds,
        cfg_coef=3.0,
        seed=0,
    )
    generated = generated.reshape(-1)[:samples]
    melody = chroma_from_midi(midi, frame_rate=frame_rate, duration=args.seconds, argmax=True)
    panels = [
        (f"FluidSynth render of {midi.stem}", render),
        (f"the render through the codec ({sound.lm.num_codebooks} codebooks)", through.numpy()),
        ("audio LM: melody condition, CFG 3", generated),
    ]
    for title, wav in panels:
        chroma = chroma_from_audio(wav[None], rate, frame_rate=frame_rate, argmax=True)
        print(f"{title}: chroma cosine with the melody {chroma_similarity(chroma, melody)[0]:.3f}")
    print(f"wrote {save_spectrograms(panels, rate, args.out, width=16 / 3)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

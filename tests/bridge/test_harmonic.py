"""The transcriber's harmonic stack: semitone filters, the stacked channels on a real FluidSynth render,
a checkpoint gaining the stack without changing its output, and training it from ``--init``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from symusic import Note, Score, Tempo, Track

from notewave.bridge.soundfont import list_soundfonts
from notewave.bridge.transcription.harmonic import HARMONICS, SHIFTS, HarmonicStack, semitone_filterbank
from notewave.bridge.transcription.model import MIN_MIDI, N_KEYS, Transcriber, TranscriberConfig
from notewave.bridge.transcription.train import train_transcriber
from notewave.cli.bridge import add_train_transcriber_cli
from notewave.errors import ConfigError
from notewave.paths import DEFAULT_TRANSCRIBER_CHECKPOINT, JSB_MIDI_DIR

FONTS = [p for p in list_soundfonts() if p.name == "TimGM6mb.sf2"] or list_soundfonts()
FONT = FONTS[0] if FONTS else None
needs_synth = pytest.mark.skipif(FONT is None, reason="no SoundFont installed")
needs_checkpoint = pytest.mark.skipif(
    not (DEFAULT_TRANSCRIBER_CHECKPOINT / "model.safetensors").is_file(), reason="no shipped transcriber"
)


def test_shifts_are_the_harmonics_in_semitones() -> None:
    assert SHIFTS == (-12, 0, 12, 19, 24, 28, 31) and len(HARMONICS) == len(SHIFTS)
    assert HarmonicStack.n_bins(N_KEYS) == N_KEYS + 43


def test_semitone_filterbank_rows_and_centres() -> None:
    fb = semitone_filterbank(16000, 2048, MIN_MIDI - 12, HarmonicStack.n_bins(N_KEYS))
    assert fb.shape == (131, 1025) and fb.dtype == np.float32 and (fb >= 0).all()
    centres = 440.0 * 2.0 ** ((np.arange(131) + MIN_MIDI - 12 - 69) / 12)
    below = centres < 8000
    np.testing.assert_allclose(fb[below].sum(1), 1.0, atol=1e-5)
    assert not fb[~below].any()  # past the Nyquist frequency: empty
    freqs = np.arange(1025) * 16000 / 2048
    a4 = 69 - (MIN_MIDI - 12)
    assert abs(freqs[np.argmax(fb[a4])] - 440.0) < 16000 / 2048  # A4's filter peaks on the bin nearest 440 Hz


def _one_note(pitch: int, seconds: float = 1.0) -> Score:
    score = Score(480)
    score.tempos.append(Tempo(0, qpm=120.0))
    track = Track(name="n", program=0, is_drum=False)
    track.notes.append(Note(0, int(seconds * 960), pitch, 100))
    score.tracks.append(track)
    return score


@needs_synth
def test_stacked_channels_on_a_rendered_piano_note() -> None:
    """A FluidSynth piano C4: the fundamental channel peaks at C4 among its neighbours, and the channels
    are the same spectrum read at the harmonic shifts (the sub-harmonic channel of C5 is C4's fundamental)."""
    from notewave.bridge.render import render_midi

    wav, _ = render_midi(_one_note(60), 16000, soundfont=FONT, tail_seconds=0.2)
    model = Transcriber(TranscriberConfig(harmonic_channels=4)).eval()
    feats = model.features(torch.from_numpy(wav[0][None].astype(np.float32)))
    n_mels = model.config.n_mels
    assert feats.shape[-1] == n_mels + HarmonicStack.n_bins(N_KEYS)
    semis = feats[0, 5:20, n_mels:].mean(0).numpy()  # frames 0.16-0.6 s: the note sounds
    offset = -min(SHIFTS)
    stack = np.stack([semis[offset + s : offset + s + N_KEYS] for s in SHIFTS])  # [H, 88], as the module does
    c4 = 60 - MIN_MIDI
    fundamental = stack[SHIFTS.index(0)]
    assert fundamental[c4] > fundamental[c4 - 2 : c4 + 3][[0, 1, 3, 4]].max() + 1.0  # natural-log units
    np.testing.assert_allclose(stack[SHIFTS.index(-12), c4 + 12], fundamental[c4])
    np.testing.assert_allclose(stack[SHIFTS.index(12), c4], fundamental[c4 + 12])
    # the key an octave below (a classic false note) has nothing at its own fundamental
    assert fundamental[c4 - 12] < fundamental[c4] - 3.0


@needs_checkpoint
@needs_synth
def test_the_shipped_checkpoint_gains_a_stack_without_changing_its_notes(tmp_path: Path) -> None:
    from notewave.bridge.render import render_midi

    src = JSB_MIDI_DIR / "test" / "jsb_test_000.mid"
    score = Score.from_midi(src.read_bytes()).to("second").clip(0.0, 5.0, clip_end=False)
    wav, _ = render_midi(score, 16000, soundfont=FONT, tail_seconds=0.3)
    base = Transcriber.from_pretrained(DEFAULT_TRANSCRIBER_CHECKPOINT)
    grown = base.with_harmonic_stack(8)
    assert grown.config.harmonic_channels == 8 and base.harmonic is None and grown.harmonic is not None
    assert grown.num_parameters() > base.num_parameters()
    a, b = base.activations(wav[0]), grown.activations(wav[0])
    for head in a:
        np.testing.assert_allclose(a[head], b[head], atol=1e-6)
    assert a["onset"].max() > 0.5  # the chorale's notes are there
    grown.save_pretrained(tmp_path / "grown")
    loaded = Transcriber.from_pretrained(tmp_path / "grown")
    assert loaded.config.harmonic_channels == 8
    np.testing.assert_allclose(loaded.activations(wav[0])["frame"], b["frame"], atol=1e-6)
    with pytest.raises(ConfigError, match="already"):
        grown.with_harmonic_stack(8)
    with pytest.raises(ConfigError, match=">= 1"):
        base.with_harmonic_stack(0)
    with pytest.raises(ConfigError, match="harmonic_channels"):
        TranscriberConfig(harmonic_channels=-1)


@needs_synth
def test_training_from_init_learns_the_stack(tmp_path: Path, jsb_split_folder: Path) -> None:
    data = jsb_split_folder
    tiny = TranscriberConfig(n_mels=64, conv_channels=4, d_model=16, rnn_hidden=8)
    opts = dict(
        batch_size=2,
        pool_size=1,
        refresh_every=2,
        eval_every=2,
        val_pieces=1,
        soundfonts=[FONT],
        augment=False,
    )
    train_transcriber([data], tmp_path / "a", steps=1, config=tiny, **opts)
    out = train_transcriber(
        [data],
        tmp_path / "b",
        steps=2,
        init=tmp_path / "a" / "last",
        harmonic_channels=4,
        **opts,
    )
    assert np.isfinite(out["best_val_loss"])
    tuned = Transcriber.from_pretrained(tmp_path / "b" / "last")
    assert tuned.config.harmonic_channels == 4 and tuned.config.d_model == 16
    assert tuned.harmonic is not None and tuned.harmonic.proj.weight.abs().sum() > 0  # trained off zero
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["init"] == str(tmp_path / "a" / "last")
    with pytest.raises(ConfigError, match="already has a harmonic stack of 4"):
        train_transcriber([data], tmp_path / "b", steps=3, resume=True, harmonic_channels=8, **opts)
    parser = argparse.ArgumentParser()
    add_train_transcriber_cli(parser.add_subparsers(dest="model"))
    args = parser.parse_args(["transcriber", "--midi", "a", "--out", "r", "--harmonic-channels", "16"])
    assert args.harmonic_channels == 16

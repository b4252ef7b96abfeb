"""Onset negatives at a true note's harmonics weighted in the transcriber's loss
(``train transcriber --harmonic-negatives W``), on the real labels of a JSB chorale."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from notewave.bridge.soundfont import list_soundfonts
from notewave.bridge.transcription.data import load_piece, piano_roll
from notewave.bridge.transcription.model import HEADS, MIN_MIDI, TranscriberConfig
from notewave.bridge.transcription.train import (
    HARMONIC_SHIFTS,
    harmonic_negative_mask,
    train_transcriber,
    transcription_loss,
)
from notewave.cli.bridge import add_train_transcriber_cli
from notewave.errors import ConfigError
from notewave.paths import JSB_MIDI_DIR

FONT = ([p for p in list_soundfonts() if p.name == "TimGM6mb.sf2"] or list_soundfonts() or [None])[0]
FPS = 31.25


def _chorale_roll(frames: int = 300) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    notes = load_piece(JSB_MIDI_DIR / "test" / "jsb_test_001.mid")[:, :4]
    return notes, piano_roll(notes, frames, FPS)


def test_the_mask_marks_the_harmonics_of_true_onsets_and_nothing_else() -> None:
    notes, roll = _chorale_roll()
    onset = torch.from_numpy(roll["onset"][None])
    mask = harmonic_negative_mask(onset)[0].numpy()
    assert mask.any() and not (mask & (roll["onset"] > 0)).any()  # never on a labelled onset
    on = roll["onset"] >= 0.5
    for t, k in zip(*np.nonzero(mask), strict=True):  # each marked cell is a harmonic of a true onset
        lo, hi = max(0, t - 1), t + 2
        assert any(0 <= k - s < 88 and on[lo:hi, k - s].any() for s in HARMONIC_SHIFTS), (t, k)
    note = notes[notes[:, 0] >= 2.0][
        0
    ]  # one note alone: exactly its shifted keys, +-1 frame around its onset
    pitch = note[2]
    single = piano_roll(note[None], 300, FPS)["onset"]
    lone = harmonic_negative_mask(torch.from_numpy(single[None]))[0].numpy()
    t0 = int(np.argmax(single.max(1) >= 0.5))
    key = int(pitch) - MIN_MIDI
    expected = {k + s for s in HARMONIC_SHIFTS for k in [key] if 0 <= k + s < 88}
    assert set(np.nonzero(lone.any(0))[0]) == expected
    assert set(np.nonzero(lone.any(1))[0]) == {t0 - 1, t0, t0 + 1}


def test_the_loss_weighs_a_harmonic_false_onset_and_no_other() -> None:
    _, roll = _chorale_roll()
    labels = {h: torch.from_numpy(roll[h][None]) for h in HEADS}
    base = {h: torch.where(labels[h] >= 0.5, 8.0, -8.0) for h in HEADS}
    t, k = (int(v) for v in np.argwhere(roll["onset"] >= 0.5)[5])
    cells = roll["onset"].size
    before = [float(transcription_loss(base, labels, w)) for w in (1.0, 4.0)]
    for shift, harmonic in ((12, True), (5, False)):
        logits = {h: v.clone() for h, v in base.items()}
        assert roll["onset"][t, k + shift] == 0
        logits["onset"][0, t, k + shift] = 6.0  # a confident false onset where -8 was
        after = [float(transcription_loss(logits, labels, w)) for w in (1.0, 4.0)]
        rise = [a - b for a, b in zip(after, before, strict=True)]
        term = F.binary_cross_entropy_with_logits(
            torch.tensor([6.0, -8.0]), torch.zeros(2), reduction="none"
        ).tolist()
        one = (term[0] - term[1]) / cells
        assert rise[0] == pytest.approx(one, rel=0.02)
        # an octave above a true onset: its term counts 4 times; a fourth above: once
        assert rise[1] == pytest.approx(4 * one if harmonic else one, rel=0.02)


@pytest.mark.skipif(FONT is None, reason="no SoundFont installed")
def test_training_with_harmonic_negatives_and_the_cli_option(tmp_path: Path, jsb_split_folder: Path) -> None:
    data = jsb_split_folder
    tiny = TranscriberConfig(n_mels=64, conv_channels=4, d_model=16, rnn_hidden=8)
    opts = dict(batch_size=2, pool_size=1, refresh_every=2, eval_every=2, val_pieces=1, augment=False)
    out = train_transcriber(
        [data], tmp_path / "a", steps=2, config=tiny, soundfonts=[FONT], harmonic_negatives=3.0, **opts
    )
    assert np.isfinite(out["best_val_loss"])
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["harmonic_negatives"] == 3.0
    with pytest.raises(ConfigError, match="harmonic_negatives must be >= 1"):
        train_transcriber([data], tmp_path / "b", steps=1, config=tiny, harmonic_negatives=0.5, **opts)
    parser = argparse.ArgumentParser()
    add_train_transcriber_cli(parser.add_subparsers(dest="model"))
    base = ["transcriber", "--midi", "a", "--out", "r"]
    assert parser.parse_args(base).harmonic_negatives == 1.0
    assert parser.parse_args([*base, "--harmonic-negatives", "4"]).harmonic_negatives == 4.0

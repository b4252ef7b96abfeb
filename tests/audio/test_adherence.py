"""Melody adherence by transcription (notewave.audio.lm.adherence) on real FluidSynth renders of JSB
test chorales: a render scores high against its own notes and low against another chorale's."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from notewave.audio.lm.adherence import pitch_class_notes, score_pitch_classes, transcription_adherence
from notewave.bridge.render import render_midi
from notewave.errors import ConfigError

SECONDS = 4.0


def test_a_render_follows_its_own_notes_not_another_chorale(jsb_test_files: list[Path]) -> None:
    own, other = jsb_test_files[0], jsb_test_files[2]
    wav, rate = render_midi(own, 32000, normalize="loudness")
    wav = wav[:, : int(SECONDS * rate)]
    mine = transcription_adherence(wav, rate, own)
    theirs = transcription_adherence(wav, rate, other)
    assert set(mine) == {0.05, 0.1}
    strict, loose = mine[0.05], mine[0.1]
    print(f"own: {strict}\nother: {theirs[0.05]}")
    assert strict.reference_notes >= 10 and strict.estimated_notes >= 10
    assert strict.onset_f1 >= 0.6 and strict.frame_precision >= 0.8 and strict.frame_recall >= 0.3
    assert loose.onset_f1 >= strict.onset_f1  # a wider window never matches fewer notes
    assert theirs[0.05].onset_f1 < strict.onset_f1 - 0.3
    assert theirs[0.05].frame_precision < strict.frame_precision - 0.3


def test_pitch_classes_octaves_tolerances_and_merging() -> None:
    reference = np.array([[0.0, 0.5, 60], [0.5, 1.0, 64], [0.5, 1.0, 52], [1.0, 1.5, 67]])  # E in 2 octaves
    assert pitch_class_notes(reference).tolist() == [[0.0, 0.5, 0], [0.5, 1.0, 4], [1.0, 1.5, 7]]
    assert pitch_class_notes(reference, end=0.75).tolist() == [[0.0, 0.5, 0], [0.5, 0.75, 4]]
    octave_up = reference[[0, 1, 3]] + [0.0, 0.0, 12]  # every note an octave higher: still right
    assert score_pitch_classes(reference, octave_up).onset_f1 == 1.0
    late = reference[[0, 1, 3]] + [0.07, 0.07, 0]  # 70 ms late: out of 50 ms, within 100 ms
    assert score_pitch_classes(reference, late, 0.05).onset_f1 == 0.0
    assert score_pitch_classes(reference, late, 0.1).onset_f1 == 1.0
    wrong = reference[[0, 1, 3]] + [0.0, 0.0, 1]  # a semitone off: nothing matches
    scores = score_pitch_classes(reference, wrong)
    assert scores.onset_f1 == 0.0 and scores.frame_precision == 0.0
    half = score_pitch_classes(reference, reference[:1])  # only the first note
    assert half.onset_precision == 1.0 and math.isclose(half.onset_recall, 1 / 3)
    assert half.frame_precision == 1.0 and math.isclose(half.frame_recall, 1 / 3)


def test_empty_and_bad_notes() -> None:
    reference = np.array([[0.0, 0.5, 60]])
    assert score_pitch_classes(reference, np.zeros((0, 3))).onset_f1 == 0.0
    assert math.isnan(score_pitch_classes(np.zeros((0, 3)), reference).onset_f1)
    with pytest.raises(ConfigError, match="offset >= onset"):
        pitch_class_notes(np.array([[1.0, 0.5, 60]]))
    with pytest.raises(ConfigError, match="must be > 0"):
        score_pitch_classes(reference, reference, onset_tolerance=0)

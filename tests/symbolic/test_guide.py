"""Consonance guidance of accompaniment (notewave.symbolic.guide) on real JSB chorales: the bias
itself (which pitches and lengths it lowers), its effect on an untrained tiny model (a strong guide
leaves no dissonant beat), the shipped composer's chorale harmonization with and without it, the
CLI option and its bad inputs."""

from __future__ import annotations

import pytest

from notewave.cli import main
from notewave.core.midi import load_score
from notewave.errors import ConfigError
from notewave.symbolic.compose import first_bars
from notewave.symbolic.grammar import State
from notewave.symbolic.guide import HELD_SHARE, ConsonanceGuide
from notewave.symbolic.piece import BAR, PITCH, POS, TRACK, piece_from_score
from notewave.symbolic.quality_accompaniment import CONSONANT_INTERVALS, consonance_counts
from notewave.symbolic.vocab import DRUMS, DURATIONS

LOWER = ["Alto", "Tenor", "Bass"]


def _melody(path, bars: int):
    score = first_bars(load_score(path), bars)
    del score.tracks[1:]
    return score


def _share(score) -> float:
    beats, consonant = consonance_counts(score, ["Soprano"], LOWER)
    assert beats > 0
    return consonant / beats


def test_guide_lowers_the_pitches_and_lengths_dissonant_with_the_melody(tiny_model, jsb_test_files):
    vocab = tiny_model.vocab
    piece = piece_from_score(load_score(jsb_test_files[3]))
    guide = ConsonanceGuide(vocab, piece, [0], strength=3.0)
    assert piece.meters[0] == (4, 4)  # 48 positions a bar
    soprano = piece.notes[piece.notes[:, TRACK] == 0]
    onsets = soprano[:, BAR] * 48 + soprano[:, POS]
    first, second = soprano[0], soprano[onsets > onsets[0]][0]
    bar, pos = int(first[BAR]), int(first[POS])
    assert guide.melody_pitch(bar, pos) == int(first[PITCH])
    bias = guide.for_slot(bar, 1)
    pitch_bias = bias(State("pos", track=1, pos=pos))
    pitches = vocab.spans["Pitch"]
    for pitch in range(48, 72):
        consonant = (int(first[PITCH]) - pitch) % 12 in CONSONANT_INTERVALS
        assert float(pitch_bias[pitches.start + pitch]) == (0.0 if consonant else -3.0)
    assert float(pitch_bias[vocab.spans["Pos"].start]) == 0.0  # only pitches move
    # a pitch consonant now and dissonant with the next melody note: lengths reaching it are lowered
    nxt = int(second[PITCH])
    held = next(
        p
        for p in range(48, 72)
        if (int(first[PITCH]) - p) % 12 in CONSONANT_INTERVALS and (nxt - p) % 12 not in CONSONANT_INTERVALS
    )
    dur_bias = bias(State("vel", track=1, pos=pos, pitch=held))
    gap = (int(second[BAR]) - bar) * 48 + int(second[POS]) - pos
    durs = vocab.spans["Dur"]
    for index, length in enumerate(DURATIONS):
        expected = -3.0 * HELD_SHARE if length > gap else 0.0
        assert float(dur_bias[durs.start + index]) == expected, (length, gap)
    assert guide.for_slot(bar, 0) is not None
    assert ConsonanceGuide(vocab, piece, [0], strength=0.0).for_slot(bar, 1) is None


def test_guide_leaves_drums_alone_and_rejects_bad_settings(tiny_model, jsb_test_files):
    piece = piece_from_score(load_score(jsb_test_files[3]))
    piece.programs[3] = DRUMS
    guide = ConsonanceGuide(tiny_model.vocab, piece, [0], strength=2.0)
    assert guide.for_slot(0, 3) is None
    for bad in (-1.0, float("nan")):
        with pytest.raises(ConfigError, match="consonance strength"):
            ConsonanceGuide(tiny_model.vocab, piece, [0], strength=bad)
    with pytest.raises(ConfigError, match="melody tracks"):
        ConsonanceGuide(tiny_model.vocab, piece, [7], strength=2.0)


def test_a_strong_guide_makes_an_untrained_models_parts_consonant(tiny_model, jsb_test_files):
    melody = _melody(jsb_test_files[5], 4)
    alone = tiny_model.accompany(melody, "satb", seed=0, style="bach", consonance=0.0)
    guided = tiny_model.accompany(melody, "satb", seed=0, style="bach", consonance=30.0)
    assert _share(alone) < 0.6  # near-uniform pitches: most beats hold a dissonance
    assert _share(guided) >= 0.95
    with pytest.raises(ConfigError, match="consonance strength"):
        tiny_model.accompany(melody, "satb", seed=0, consonance=-2.0)


def test_cli_accompany_consonance_option(tiny_checkpoint, jsb_test_files, tmp_path, capsys):
    melody = _melody(jsb_test_files[5], 3)
    src = tmp_path / "melody.mid"
    melody.dump_midi(src)
    args = ["accompany", str(src), "--add", "satb", "--checkpoint", str(tiny_checkpoint), "--seed", "0"]
    assert main([*args, "--out", str(tmp_path / "a.mid"), "--consonance", "30"]) == 0
    assert _share(load_score(tmp_path / "a.mid")) >= 0.95
    assert main([*args, "--out", str(tmp_path / "b.mid"), "--consonance", "-1"]) != 0
    assert "consonance strength" in capsys.readouterr().err
    assert not (tmp_path / "b.mid").exists()


def test_composer_harmonizes_chorales_consonantly_with_the_guide(composer_model, jsb_test_files):
    """The shipped composer alone seconds the melody on many beats; with the default guide its
    alto, tenor and bass are consonant with the soprano about as often as Bach's own voices."""
    alone, guided, real = [], [], []
    for path in jsb_test_files[20:22]:
        melody = _melody(path, 8)
        alone.append(_share(composer_model.accompany(melody, "satb", seed=0, style="bach", consonance=0.0)))
        guided.append(_share(composer_model.accompany(melody, "satb", seed=0, style="bach")))
        real.append(_share(first_bars(load_score(path), 8)))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean(guided) > mean(alone) + 0.15, (alone, guided)
    assert mean(guided) >= mean(real) - 0.1, (guided, real)

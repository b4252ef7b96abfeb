"""The decoding guides on real JSB chorales: consonance guidance of accompaniment
(notewave.symbolic.guide: which pitches and lengths it lowers, a strong guide leaves an untrained
model no dissonant beat, the shipped composer's chorale harmonization with and without it) and the
key guide of every edit (notewave.symbolic.key_guide: its profile and bias, a strong guide keeps an
untrained model's bars in the prompt's key); the CLI options and their bad values."""

from __future__ import annotations

import numpy as np
import pytest

from notewave.cli import main
from notewave.core.midi import bar_grid, load_score
from notewave.errors import ConfigError
from notewave.symbolic.compose import first_bars
from notewave.symbolic.grammar import State
from notewave.symbolic.guide import HELD_SHARE, ConsonanceGuide
from notewave.symbolic.key_guide import KEY_FLOOR, KeyGuide
from notewave.symbolic.piece import BAR, DUR, PITCH, POS, TRACK, piece_from_score
from notewave.symbolic.quality import cosine, pitch_class_histogram
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
    bias = guide.for_bar(piece, bar)
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
    assert ConsonanceGuide(vocab, piece, [0], strength=0.0).for_bar(piece, bar) is None


def test_guide_leaves_drums_alone_and_rejects_bad_settings(tiny_model, jsb_test_files):
    piece = piece_from_score(load_score(jsb_test_files[3]))
    piece.programs[3] = DRUMS
    guide = ConsonanceGuide(tiny_model.vocab, piece, [0], strength=2.0)
    assert guide.for_bar(piece, 0)(State("pos", track=3, pos=0)) is None
    assert guide.for_bar(piece, 0)(State("pos", track=2, pos=0)) is not None
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


# ---- the key guide ---------------------------------------------------------------------------
def test_key_profile_and_bias_of_a_real_chorale(tiny_model, jsb_test_files):
    vocab = tiny_model.vocab
    piece = piece_from_score(load_score(jsb_test_files[2]))
    guide = KeyGuide(vocab, strength=0.5, bars=2)
    profile = guide.profile(piece, 3)
    near = piece.notes[(piece.notes[:, BAR] >= 1) & (piece.notes[:, BAR] <= 5)]
    weights = np.asarray(DURATIONS, float)[near[:, DUR]]
    hist = np.bincount(near[:, PITCH] % 12, weights, minlength=12)
    assert profile == pytest.approx((1 - KEY_FLOOR) * hist / hist.sum() + KEY_FLOOR / 12)
    assert profile.sum() == pytest.approx(1.0)
    bias = guide.for_bar(piece, 3)(State("pos", track=2, pos=0))
    pitches = vocab.spans["Pitch"]
    assert float(bias[pitches.start + 60]) == pytest.approx(0.5 * np.log(12 * profile[0]), abs=1e-6)
    unused = [pc for pc in range(12) if hist[pc] == 0]
    assert unused, "a chorale's 5 bars leave some pitch class unused"
    assert float(bias[pitches.start + 48 + unused[0]]) == pytest.approx(0.5 * np.log(KEY_FLOOR), abs=1e-6)
    assert not bias[: pitches.start].any() and not bias[pitches.stop :].any()  # only pitches move
    assert guide.for_bar(piece, 3)(State("vel", track=2, pos=0, pitch=60)) is None
    assert KeyGuide(vocab, 0.5, until=0).for_bar(piece, 3) is None  # nothing counts: no bias
    assert KeyGuide(vocab, strength=0.0).for_bar(piece, 3) is None


def _profile_of(piece, bars) -> np.ndarray:
    rows = piece.notes[np.isin(piece.notes[:, BAR], bars)]
    hist = np.bincount(rows[:, PITCH] % 12, np.asarray(DURATIONS, float)[rows[:, DUR]], minlength=12)
    return (1 - KEY_FLOOR) * hist / hist.sum() + KEY_FLOOR / 12


def test_key_profile_skips_the_rewritten_slots_and_a_continuations_own_bars(tiny_model, jsb_test_files):
    """An infill's slots (all four voices of bars 3-4) do not count: the two nearest bars on each
    side do; a continuation's new bars (from ``until``) do not count: the prompt's last ones do."""
    piece = piece_from_score(load_score(jsb_test_files[2]))
    slots = [(b, t) for b in (2, 3) for t in range(4)]
    infill = KeyGuide(tiny_model.vocab, 0.5, bars=2, skip=slots)
    assert infill.profile(piece, 2) == pytest.approx(_profile_of(piece, [0, 1, 4, 5]))
    assert not np.allclose(
        infill.profile(piece, 2), KeyGuide(tiny_model.vocab, 0.5, bars=2).profile(piece, 2)
    )
    tenor_only = KeyGuide(tiny_model.vocab, 0.5, bars=1, skip=[(2, 2)])  # the other voices of bar 2 count
    rows = piece.notes[
        np.isin(piece.notes[:, BAR], [1, 2, 3]) & ~((piece.notes[:, BAR] == 2) & (piece.notes[:, TRACK] == 2))
    ]
    hist = np.bincount(rows[:, PITCH] % 12, np.asarray(DURATIONS, float)[rows[:, DUR]], minlength=12)
    assert tenor_only.profile(piece, 2) == pytest.approx((1 - KEY_FLOOR) * hist / hist.sum() + KEY_FLOOR / 12)
    continuation = KeyGuide(tiny_model.vocab, 0.5, bars=2, until=4)
    assert continuation.profile(piece, 6) == pytest.approx(_profile_of(piece, [2, 3]))


def test_key_guide_ignores_drums(tiny_model, jsb_test_files):
    piece = piece_from_score(load_score(jsb_test_files[2]))
    reference = KeyGuide(tiny_model.vocab, 1.0).profile(piece, 2)
    piece.programs[3] = DRUMS  # the bass becomes a drum track: it leaves the profile
    without_bass = KeyGuide(tiny_model.vocab, 1.0)
    assert not np.allclose(without_bass.profile(piece, 2), reference)
    assert without_bass.for_bar(piece, 2)(State("pos", track=3, pos=0)) is None
    with pytest.raises(ConfigError, match="key strength"):
        KeyGuide(tiny_model.vocab, -0.5)


def _key_cosine(score, start_bar: int) -> float:
    lines = bar_grid(score).lines
    before = pitch_class_histogram(score, int(lines[0]), int(lines[start_bar]))
    after = pitch_class_histogram(score, int(lines[start_bar]), int(lines[-1]))
    return cosine(before, after)


def test_the_key_guide_keeps_an_untrained_models_bars_in_key(tiny_model, jsb_test_files):
    """Weight 1 on a near-uniform model samples pitch classes close to the profile itself (the
    register bound off: the key guide alone)."""
    score = load_score(jsb_test_files[6])
    prompt = first_bars(score, 4)
    free = {"seed": 0, "style": "bach", "range_margin": None}
    plain = tiny_model.continue_midi(prompt, bars=3, key=0.0, **free)
    keyed = tiny_model.continue_midi(prompt, bars=3, key=1.0, **free)
    assert _key_cosine(keyed, 4) > max(0.8, _key_cosine(plain, 4) + 0.2)

    def infill_cosine(key: float) -> float:
        out = tiny_model.infill(score, (3, 4), key=key, **free)
        lines = [int(x) for x in bar_grid(out).lines]
        before, after = (pitch_class_histogram(out, lines[a], lines[b]) for a, b in ((0, 2), (4, 8)))
        return cosine(before + after, pitch_class_histogram(out, lines[2], lines[4]))

    assert infill_cosine(1.0) > max(0.8, infill_cosine(0.0) + 0.15)


def test_cli_key_option_and_its_bad_value(tiny_checkpoint, jsb_test_files, tmp_path, capsys):
    base = ["generate", "--prompt", str(jsb_test_files[6]), "--prompt-bars", "4", "--bars", "2"]
    base += ["--checkpoint", str(tiny_checkpoint), "--range-margin", "off"]
    assert main([*base, "--key", "1", "--out", str(tmp_path / "a.mid")]) == 0
    assert _key_cosine(load_score(tmp_path / "a.mid"), 4) > 0.85
    assert main([*base, "--key", "-1", "--out", str(tmp_path / "b.mid")]) != 0
    assert "key strength" in capsys.readouterr().err
    assert not (tmp_path / "b.mid").exists()

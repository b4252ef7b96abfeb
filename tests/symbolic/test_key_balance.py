"""The key guide's balance term (notewave.symbolic.key_guide): its bias on a real chorale as notes are
written (exactly ``balance * log(p / q)``, each note counted once, drums and a zero weight left
out), and the shipped composer on a real Freedoom metal riff, where the model alone fills the
span with one repeated pitch class and the balance brings back the key of the bars around it."""

from __future__ import annotations

import numpy as np
import pytest

from notewave.cli import main
from notewave.core.midi import load_score
from notewave.errors import ConfigError
from notewave.symbolic.compose import first_bars
from notewave.symbolic.grammar import State
from notewave.symbolic.key_guide import BALANCE_PRIOR, KeyGuide
from notewave.symbolic.piece import piece_from_score
from notewave.symbolic.quality import continuation_quality
from notewave.symbolic.vocab import DRUMS


def _note(track: int, pos: int, pitch: int) -> State:
    """The grammar state after a note's ``Dur``: the note has just closed."""
    return State("note", track=track, pos=pos, pitch=pitch)


def test_balance_bias_follows_the_notes_written(tiny_model, jsb_test_files):
    vocab = tiny_model.vocab
    piece = piece_from_score(load_score(jsb_test_files[2]))
    guide = KeyGuide(vocab, 0.5, bars=2, balance=1.0)
    profile = guide.profile(piece, 3)
    key = guide.for_bar(piece, 3)
    static = KeyGuide(vocab, 0.5, bars=2).bias_of(profile)
    pitches = vocab.spans["Pitch"]
    assert guide.balance_of(profile) is None  # nothing written yet: the key bias alone
    assert np.allclose(key(State("pos", track=1, pos=0)), static)
    for pos in range(4):  # four Ds close in the alto; each state is seen twice, counted once
        key(_note(1, pos, 62))
        key(_note(1, pos, 62))
        key(State("pos", track=1, pos=pos + 1))
    assert guide.written.tolist() == [0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    written = (guide.written + BALANCE_PRIOR * profile) / (4 + BALANCE_PRIOR)
    bias = key(State("pos", track=1, pos=6))
    for pitch in (50, 62, 60, 67):
        expected = 0.5 * np.log(12 * profile[pitch % 12]) + np.log(profile[pitch % 12] / written[pitch % 12])
        assert float(bias[pitches.start + pitch]) == pytest.approx(expected, abs=1e-5)
    assert float(bias[pitches.start + 62] - static[pitches.start + 62]) < -0.2  # D is past its share
    assert float(bias[pitches.start + 60] - static[pitches.start + 60]) > 0.1  # C has none yet
    assert not bias[: pitches.start].any() and not bias[pitches.stop :].any()  # only pitches move
    # a drum track's notes are not counted and get no bias; the count carries to the next bar's function
    piece.programs[3] = DRUMS
    next_bar = guide.for_bar(piece, 4)
    assert next_bar(_note(3, 0, 36)) is None and guide.written.sum() == 4
    next_bar(_note(0, 0, 67))
    assert guide.written.sum() == 5
    off = KeyGuide(vocab, 0.5, bars=2, balance=0.0)
    plain = off.for_bar(piece, 3)
    plain(_note(1, 0, 62))
    assert np.allclose(plain(_note(1, 1, 62)), off.bias_of(off.profile(piece, 3)))
    with pytest.raises(ConfigError, match="key balance"):
        KeyGuide(vocab, 0.5, balance=-1.0)


def _riff_key(composer, cut, balance: float | None, seed: int) -> tuple[float, float]:
    """Key cosine and pitch-class entropy (bits) of an infill of bars 5-8, against the 4 bars each side
    (``balance`` None: the default)."""
    options = {} if balance is None else {"key_balance": balance}
    out = composer.infill(cut, (5, 8), style="game-rock", seed=seed, **options)
    quality = continuation_quality(out, 4, 8, context_after=4)
    return quality.key_cosine, quality.entropy


def test_balance_brings_a_repeated_riff_back_to_the_key_around_it(composer_model, freedoom_piece):
    """Freedoom's E3M3: the bars around bars 5-8 cycle through D, F, A, C and B-flat (the real
    bars: key cosine 0.98, 2.5 bits); the composer with the key guide alone fills them with
    repeated Ds (key cosine 0.68-0.71, 0.7-1.9 bits at seeds 0-2); the default balance brings both
    up (0.74-0.90, 1.4-2.3 bits)."""
    cut = first_bars(load_score(freedoom_piece("freedoom1_D_E3M3")), 12)
    real = continuation_quality(cut, 4, 8, context_after=4)
    alone = np.array([_riff_key(composer_model, cut, 0.0, seed) for seed in range(3)])
    balanced = np.array([_riff_key(composer_model, cut, None, seed) for seed in range(3)])
    assert real.key_cosine > 0.95
    assert alone[:, 0].mean() < 0.75
    assert balanced[:, 0].mean() > alone[:, 0].mean() + 0.08
    assert balanced[:, 1].mean() > alone[:, 1].mean() + 0.4


def test_cli_key_balance_option_and_its_bad_value(tiny_checkpoint, jsb_test_files, tmp_path, capsys):
    base = ["generate", "--prompt", str(jsb_test_files[6]), "--prompt-bars", "4", "--bars", "1"]
    base += ["--checkpoint", str(tiny_checkpoint)]
    assert main([*base, "--key-balance", "2", "--out", str(tmp_path / "a.mid")]) == 0
    assert load_score(tmp_path / "a.mid").note_num() > 0
    assert main([*base, "--key-balance", "-1", "--out", str(tmp_path / "b.mid")]) != 0
    assert "key balance" in capsys.readouterr().err
    assert not (tmp_path / "b.mid").exists()

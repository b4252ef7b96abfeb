"""Registers: a continued or infilled track keeps to the pitch range it plays in the given music
(``given_ranges``, a grammar bound), on real pieces, the shipped composer and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from notewave.cli import main
from notewave.core.midi import load_score
from notewave.errors import ConfigError
from notewave.symbolic.compose import first_bars, span_slots
from notewave.symbolic.parts import RANGE_MARGIN, given_ranges
from notewave.symbolic.piece import BAR, PITCH, TRACK, piece_from_score
from notewave.symbolic.vocab import DRUMS

ROCK = "freedoom1_D_E3M3"  # Freedoom test split: bass, distorted guitar, drums
GROOVE = "mma_50sRock.mid"


def _outside(piece, ranges, first: int, last: int) -> dict[int, list[int]]:
    """Pitches of bars ``first..last`` (1-based) per track that lie outside ``ranges``."""
    rows = piece.notes[(piece.notes[:, BAR] >= first - 1) & (piece.notes[:, BAR] < last)]
    out = {}
    for track, (low, high) in ranges.items():
        pitches = rows[rows[:, TRACK] == track, PITCH]
        if bad := [int(p) for p in pitches if not low <= p <= high]:
            out[track] = bad
    return out


def test_ranges_are_each_pitched_tracks_given_notes_widened_by_the_margin(freedoom_piece):
    piece = piece_from_score(first_bars(load_score(freedoom_piece(ROCK)), 12))
    slots = span_slots(piece, 5, 8, range(piece.tracks))
    ranges = given_ranges(piece, skip=slots)
    outside = piece.notes[(piece.notes[:, BAR] < 4) | (piece.notes[:, BAR] >= 8)]
    pitched = [t for t, p in enumerate(piece.programs) if p != DRUMS and (outside[:, TRACK] == t).any()]
    assert sorted(ranges) == pitched and len(pitched) >= 2
    for track in pitched:
        pitches = outside[outside[:, TRACK] == track, PITCH]
        assert ranges[track] == (pitches.min() - RANGE_MARGIN, pitches.max() + RANGE_MARGIN)
    # a continuation reads the prompt's bars only; no margin, no bound
    prompt = given_ranges(piece, until=4, margin=0)
    for track, (low, high) in prompt.items():
        pitches = piece.notes[(piece.notes[:, BAR] < 4) & (piece.notes[:, TRACK] == track), PITCH]
        assert (low, high) == (pitches.min(), pitches.max())
    assert given_ranges(piece, margin=None) == {}
    with pytest.raises(ConfigError, match="range margin"):
        given_ranges(piece, margin=-1)


def test_the_shipped_composer_keeps_an_infilled_bass_in_its_register(composer_model, freedoom_piece):
    """Without the bound, the composer's infill of bars 5-8 of E3M3 (seed 0) writes notes of a
    track well out of the range it plays in bars 1-4 and 9-12 (its bass line moved up by octaves);
    with it every new note is inside, the notes outside the span are unchanged, and each track
    that played still plays."""
    score = first_bars(load_score(freedoom_piece(ROCK)), 12)
    piece = piece_from_score(score)
    ranges = given_ranges(piece, skip=span_slots(piece, 5, 8, range(piece.tracks)))
    free = piece_from_score(
        composer_model.infill(score, (5, 8), seed=0, style="game-rock", range_margin=None)
    )
    far = {
        t: [p for p in bad if p > ranges[t][1] + 5 or p < ranges[t][0] - 5]
        for t, bad in _outside(free, ranges, 5, 8).items()
    }
    assert any(far.values()), far
    bound = piece_from_score(composer_model.infill(score, (5, 8), seed=0, style="game-rock"))
    assert _outside(bound, ranges, 5, 8) == {}
    kept = lambda p: p.notes[(p.notes[:, BAR] < 4) | (p.notes[:, BAR] >= 8)]  # noqa: E731
    assert np.array_equal(kept(bound), kept(piece))
    for track in ranges:
        span = bound.notes[(bound.notes[:, BAR] >= 4) & (bound.notes[:, BAR] < 8)]
        assert (span[:, TRACK] == track).any() == (
            piece.notes[(piece.notes[:, BAR] >= 4) & (piece.notes[:, BAR] < 8), TRACK] == track
        ).any()


def test_continuation_keeps_the_prompts_registers_and_the_cli_option(
    tiny_model, tiny_checkpoint, mma_dir, tmp_path, capsys
):
    """An untrained model wanders over the whole keyboard; bound to the prompt's registers with no
    margin, each new note of a pitched track lies inside what that track plays in the prompt."""
    prompt = first_bars(load_score(mma_dir / "train" / GROOVE), 4)
    before = piece_from_score(prompt)
    ranges = given_ranges(before, margin=0)
    free = piece_from_score(tiny_model.continue_midi(prompt, bars=2, seed=0, range_margin=None))
    assert _outside(free, ranges, 5, 6), "the untrained model stayed in range: the test shows nothing"
    bound = piece_from_score(tiny_model.continue_midi(prompt, bars=2, seed=0, range_margin=0))
    assert _outside(bound, ranges, 5, 6) == {}
    base = ["generate", "--prompt", str(mma_dir / "train" / GROOVE), "--prompt-bars", "4", "--bars", "1"]
    base += ["--checkpoint", str(tiny_checkpoint)]
    assert main([*base, "--range-margin", "off", "--out", str(tmp_path / "a.mid")]) == 0
    assert main([*base, "--range-margin", "0", "--out", str(tmp_path / "b.mid")]) == 0
    assert load_score(tmp_path / "b.mid").tracks
    assert main([*base, "--range-margin", "-2", "--out", str(tmp_path / "c.mid")]) != 0
    assert "range margin must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "c.mid").exists()
    with pytest.raises(SystemExit):
        main([*base, "--range-margin", "wide", "--out", str(tmp_path / "d.mid")])

"""The density guide (notewave.symbolic.density_guide) on real music: its per-track targets on a
chorale and an MMA rock groove, the bias it puts on the ids that close a track's bar, a strong
guide keeping an untrained model's infilled and continued bars as dense as their surroundings
ask, the CLI option and its bad values."""

from __future__ import annotations

import math

import pytest
import torch

from notewave.cli import main
from notewave.core.midi import load_score
from notewave.errors import ConfigError
from notewave.symbolic.compose import first_bars, sampling_for, span_slots
from notewave.symbolic.density_guide import DENSITY_SHARE, DensityGuide
from notewave.symbolic.generate import fill_slots
from notewave.symbolic.grammar import State
from notewave.symbolic.piece import BAR, PITCH, POS, TRACK, piece_from_score
from notewave.symbolic.vocab import DRUMS, PITCH_RANGE, bar_positions

GROOVE = "mma_50sRock.mid"


def _counts(piece, bar: int, track: int) -> int:
    notes = piece.notes
    return int(((notes[:, BAR] == bar) & (notes[:, TRACK] == track)).sum())


def test_targets_are_each_tracks_notes_per_playing_bar_around(tiny_model, jsb_test_files):
    piece = piece_from_score(load_score(jsb_test_files[2]))
    guide = DensityGuide(tiny_model.vocab, 2.0, bars=2)
    for track in range(4):
        counts = [_counts(piece, b, track) for b in (1, 2, 4, 5)]
        playing = [c for c in counts if c]
        assert guide.targets(piece, 3)[track] == pytest.approx(sum(playing) / len(playing))
    # skipped slots do not count: the nearest counted bars on that side are taken instead
    skipping = DensityGuide(tiny_model.vocab, 2.0, skip=[(4, 1), (5, 1)], bars=2)
    counts = [c for c in (_counts(piece, b, 1) for b in (1, 2, 6, 7)) if c]
    assert skipping.targets(piece, 3)[1] == pytest.approx(sum(counts) / len(counts))
    assert skipping.targets(piece, 3)[0] == guide.targets(piece, 3)[0]  # other tracks: as before
    # a continuation's own bars (from `until` on) never count: the prompt's last bars do
    prompt_only = DensityGuide(tiny_model.vocab, 2.0, bars=2, until=4)
    counts = [c for c in (_counts(piece, b, 0) for b in (2, 3)) if c]
    assert prompt_only.targets(piece, 6)[0] == pytest.approx(sum(counts) / len(counts))
    last = piece.bars - 1  # bars past the end do not count (a continuation's next bar)
    counts = [_counts(piece, b, 0) for b in (last - 2, last - 1)]
    assert guide.targets(piece, last)[0] == pytest.approx(sum(counts) / len(counts))


def test_bias_lowers_only_the_closing_ids_until_the_bar_holds_its_share(tiny_model, jsb_test_files):
    vocab = tiny_model.vocab
    piece = piece_from_score(load_score(jsb_test_files[2]))
    guide = DensityGuide(vocab, 3.0)
    target = guide.targets(piece, 3)[2] * DENSITY_SHARE
    assert target > 1
    bias = guide.for_bar(piece, 3)
    assert bias(State("segment", track=2)) is None  # whether it plays stays the model's choice
    closing = [vocab["FillEnd"], vocab.bar_id, vocab.eos_id, vocab.spans["Track"].id(3)]
    first = bias(State("note", track=2, pos=0, pitch=60))
    assert all(float(first[i]) == -3.0 for i in closing)
    assert (
        int((first != 0).sum()) == 3 + vocab.spans["Track"].stop - vocab.spans["Track"].start
    )  # nothing else
    again = bias(State("note", track=2, pos=0, pitch=60))  # asked twice about one note: counted once
    assert torch.equal(again, first)
    for k in range(1, math.ceil(target) - 1):
        assert bias(State("note", track=2, pos=k, pitch=60)) is not None
    assert bias(State("note", track=2, pos=47, pitch=60)) is None  # the share is reached
    assert bias(State("pos", track=2, pos=47)) is None
    other = bias(State("note", track=1, pos=0, pitch=60))  # each track counts its own notes
    assert other is not None and float(other[closing[0]]) < 0
    assert DensityGuide(vocab, 0.0).for_bar(piece, 3) is None
    assert DensityGuide(vocab, 3.0, until=0).for_bar(piece, 3) is None  # nothing counts: no bias
    for bad in (-1.0, float("inf")):
        with pytest.raises(ConfigError, match="density strength"):
            DensityGuide(vocab, bad)
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="density share"):
            DensityGuide(vocab, 1.0, share=bad)


class _Closer:
    """A stand-in for a model that likes to close a bar early: +6 nats on the closing ids after
    every note (on an untrained model, whose own choices are close to uniform)."""

    def __init__(self, vocab):
        self.bias = torch.zeros(len(vocab))
        self.bias[DensityGuide(vocab, 1.0).closing] = 6.0

    def for_bar(self, piece, bar):
        return lambda state: self.bias if state.phase == "note" else None


def _exhausted(out, bar: int, track: int) -> bool:
    """The slot's last note is the top pitch of its track on the bar's last position: after it the
    grammar allows nothing but closing."""
    rows = out.notes[(out.notes[:, BAR] == bar) & (out.notes[:, TRACK] == track)]
    top = 127 if out.programs[track] == DRUMS else PITCH_RANGE[1]
    last = bar_positions(*out.meters[bar]) - 1
    return bool(len(rows)) and int(rows[rows[:, POS] == last, PITCH].max(initial=-1)) == top


def _short_slots(vocab, piece, out, slots) -> int:
    """Slots that play with fewer than the share of their track's notes around (those the grammar
    closed, see :func:`_exhausted`, left out)."""
    guide = DensityGuide(vocab, 1.0, skip=slots)
    short = 0
    for bar, track in slots:
        written = _counts(out, bar, track)
        needed = DENSITY_SHARE * guide.targets(piece, bar)[track]
        short += bool(written and written < needed and not _exhausted(out, bar, track))
    return short


def test_the_guide_keeps_a_closing_models_infilled_bars_dense(tiny_model, mma_dir):
    """With the closing push alone most rewritten slots of a real rock groove hold under half the
    notes their track plays around them; with the density guide at 40 nats none do (but where the
    grammar leaves nothing but closing: the top pitch on the last position)."""
    vocab, model = tiny_model.vocab, tiny_model.model
    piece = piece_from_score(load_score(mma_dir / "train" / GROOVE))
    slots = span_slots(piece, 3, 5, range(piece.tracks))
    counts = {}
    for strength in (0.0, 40.0):
        guides = [_Closer(vocab), DensityGuide(vocab, strength, skip=slots)]
        sampling = sampling_for(0, 1.0, None, 0.95)
        out = fill_slots(model, vocab, piece, slots, sampling, "jazz", guides=guides)
        counts[strength] = _short_slots(vocab, piece, out, slots)
    assert counts[0.0] >= len(slots) // 2 and counts[40.0] == 0, counts


def test_continue_and_infill_take_the_density_option(tiny_model, mma_dir):
    path = mma_dir / "train" / GROOVE
    prompt = first_bars(load_score(path), 4)
    for density in (0.0, 40.0):
        out = tiny_model.continue_midi(prompt, bars=1, seed=0, density=density)
        assert len(piece_from_score(out).notes) > len(piece_from_score(prompt).notes)
        assert tiny_model.infill(path, (3, 3), seed=0, density=density).tracks
    with pytest.raises(ConfigError, match="density strength"):
        tiny_model.continue_midi(prompt, bars=1, density=-2.0)


def test_cli_density_option_and_its_bad_value(tiny_checkpoint, mma_dir, tmp_path, capsys):
    path = mma_dir / "train" / GROOVE
    base = ["infill", str(path), "--bars", "3-4", "--checkpoint", str(tiny_checkpoint)]
    assert main([*base, "--density", "40", "--out", str(tmp_path / "a.mid")]) == 0
    assert load_score(tmp_path / "a.mid").tracks
    assert main([*base, "--density", "-1", "--out", str(tmp_path / "b.mid")]) != 0
    assert "density strength" in capsys.readouterr().err
    assert not (tmp_path / "b.mid").exists()
    accompany = ["accompany", str(path), "--add", "bass", "--density", "2", "--out", str(tmp_path / "c.mid")]
    with pytest.raises(SystemExit):  # accompany writes new parts: the guide has nothing to follow
        main(accompany)
    assert not (tmp_path / "c.mid").exists()


def test_the_shipped_composer_infills_a_held_out_rock_piece_densely(composer_model, freedoom_piece):
    """Freedoom's E3M3 (test split: guitars, bass, drums), bars 5-8 infilled: without the guide
    the composer leaves most of its playing slots under the share of the notes their track plays
    around them (8 of 12, the emptiest at 0.45 of them; a seventh before the length guide); with
    the default guide every playing slot holds at least half of them, and all but one at least
    the share (the guide is soft: the model may still close a bar it is sure of)."""
    score = first_bars(load_score(freedoom_piece("freedoom1_D_E3M3")), 12)
    piece = piece_from_score(score)
    slots = span_slots(piece, 5, 8, range(piece.tracks))
    guide = DensityGuide(composer_model.vocab, 1.0, skip=slots)

    def ratios(density: float | None) -> list[float]:
        options = {} if density is None else {"density": density}
        out = piece_from_score(composer_model.infill(score, (5, 8), seed=0, style="game-rock", **options))
        found = []
        for bar, track in slots:
            written, around = _counts(out, bar, track), guide.targets(piece, bar)[track]
            if written and around:
                found.append(written / around)
        return found

    plain, guided = ratios(0.0), ratios(None)
    assert len(guided) >= 8  # at least two tracks play in each of the 4 bars
    assert min(plain) < 0.6 and sum(r < DENSITY_SHARE for r in plain) >= len(plain) / 3, plain
    assert min(guided) >= 0.5 and sum(r < DENSITY_SHARE for r in guided) <= 1, guided

"""The multitrack token grammar (notewave.symbolic.grammar): real music follows it, its masks enforce
each rule, and grammar-constrained samples of an untrained model always decode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from symusic import TimeSignature

from notewave.core.midi import load_score
from notewave.core.sampling import sample
from notewave.errors import ConfigError
from notewave.symbolic.compose import first_bars
from notewave.symbolic.decode import Decoder, Sampling
from notewave.symbolic.grammar import Grammar, State
from notewave.symbolic.layout import header_ids, parse_ids, piece_ids
from notewave.symbolic.piece import BAR, PITCH, POS, TRACK, Piece, piece_from_score
from notewave.symbolic.vocab import DRUMS, PITCH_RANGE, Vocab, bar_positions

VOCAB = Vocab(["bach", "jazz"])


def body(piece, style=None, **options) -> tuple[list[int], int]:
    """The ids after the first ``Bar`` of a piece's tokens, and how many ids came before them."""
    ids = piece_ids(VOCAB, piece, style=style, **options)
    start = len(header_ids(VOCAB, piece.programs, piece.meters[0], 120.0, style)) + 1
    assert ids[start - 1] == VOCAB.bar_id
    return ids[start:], start


def allowed(grammar: Grammar, state: State) -> set[str]:
    return {VOCAB.name(i) for i in torch.nonzero(grammar.mask(state)).flatten().tolist()}


def test_every_real_chorale_follows_the_grammar(jsb_test_files):
    for path in jsb_test_files:
        piece = piece_from_score(load_score(path))
        ids, _ = body(piece, "bach")
        grammar = Grammar(VOCAB, piece.programs, allow_eos=True)
        assert grammar.errors(ids, grammar.bar_state((4, 4))) == [], path.name
    strict = Grammar(VOCAB, piece.programs)
    assert strict.errors(ids, strict.bar_state((4, 4))) == [
        f"token {len(ids) - 1} 'EOS' cannot follow phase 'note'"
    ], "without allow_eos the final EOS is refused"


@pytest.mark.parametrize(
    "stem, start",
    [
        ("freedoom2_D_ADRIAN", 0),
        ("freedoom1_D_E1M8", 0),
        ("freedoom1_D_E2M9", 0),
        ("freedoom2_D_ROMER2", 100),
    ],
)
def test_real_freedoom_pieces_follow_the_grammar(freedoom_piece, stem, start):
    """16 tracks with drums; 3/4; 6/8 with 163 tempo changes; 6/4 with 7/4 bars (bars 101-126)."""
    piece = piece_from_score(load_score(freedoom_piece(stem)))
    ids, _ = body(piece, start=start)
    grammar = Grammar(VOCAB, piece.programs, allow_eos=True, allow_meter=True, allow_tempo=True)
    assert grammar.errors(ids, grammar.bar_state(piece.meters[start])) == []
    strict = Grammar(VOCAB, piece.programs, allow_eos=True)  # no TimeSig/Tempo inside the piece
    changes = sum(VOCAB.kind(i) in ("TimeSig", "Tempo") for i in ids)
    assert (changes > 0) == (stem in ("freedoom1_D_E2M9", "freedoom2_D_ROMER2"))
    assert len(strict.errors(ids, strict.bar_state(piece.meters[start]))) == changes


def test_masks_enforce_each_rule():
    grammar = Grammar(VOCAB, [19, DRUMS], allow_eos=True)  # an organ, then drums
    bar = grammar.bar_state((3, 4))
    assert allowed(grammar, bar) == {"Track_0"}  # tracks in order, from the first
    assert "TimeSig_3/4" in allowed(Grammar(VOCAB, [19], allow_meter=True), bar)
    assert "Tempo_79" in allowed(Grammar(VOCAB, [19], allow_tempo=True), bar)
    segment = grammar.follow(bar, VOCAB["Track_0"])
    assert allowed(grammar, segment) == {f"Pos_{p}" for p in range(36)} | {"Track_1"}  # a 3/4 bar
    onset = grammar.follow(segment, VOCAB["Pos_12"])
    assert allowed(grammar, onset) == {f"Pitch_{p}" for p in range(PITCH_RANGE[0], PITCH_RANGE[1] + 1)}
    pitch = grammar.follow(onset, VOCAB["Pitch_60"])
    assert allowed(grammar, pitch) == {f"Vel_{v}" for v in range(16)}
    velocity = grammar.follow(pitch, VOCAB["Vel_10"])
    assert allowed(grammar, velocity) == {n for n in VOCAB.names if n.startswith("Dur_")}
    note = grammar.follow(velocity, VOCAB["Dur_12"])
    after = allowed(grammar, note)
    assert after == {f"Pos_{p}" for p in range(13, 36)} | {f"Pitch_{p}" for p in range(61, 109)} | {"Track_1"}
    drums = grammar.follow(grammar.follow(note, VOCAB["Track_1"]), VOCAB["Pos_0"])
    assert allowed(grammar, drums) == {f"Pitch_{p}" for p in range(128)}  # drums: every MIDI key
    drum_note = grammar.follow(
        grammar.follow(grammar.follow(drums, VOCAB["Pitch_36"]), VOCAB["Vel_12"]), VOCAB["Dur_1"]
    )
    assert {"Bar", "EOS", "Pitch_37", "Pos_1"} <= allowed(grammar, drum_note)  # the last track ends the bar
    assert not {"Track_0", "Track_1", "Pitch_36", "Pos_0", "FillEnd"} & allowed(grammar, drum_note)
    assert "EOS" not in allowed(Grammar(VOCAB, [19, DRUMS]), drum_note)
    fill = grammar.segment_state(0, (6, 8), fill=True)
    assert allowed(grammar, fill) == {f"Pos_{p}" for p in range(36)} | {"FillEnd"}  # a fill ends itself
    assert grammar.advance(fill, VOCAB["Pos_36"]) is None and grammar.advance(fill, VOCAB["Bar"]) is None
    top = grammar.follow(grammar.follow(segment, VOCAB["Pos_35"]), VOCAB["Pitch_108"])
    top = grammar.follow(grammar.follow(top, VOCAB["Vel_1"]), VOCAB["Dur_1"])
    assert allowed(grammar, top) == {"Track_1"}  # last position, highest pitch: only the end is left
    assert grammar.mask(top) is grammar.mask(top)  # cached per state
    never = {"PAD", "BOS", "Fill", "FillStart", "Drums"} | {
        n for n in VOCAB.names if n.startswith(("Style_", "Program_"))
    }
    for state in (bar, segment, onset, pitch, velocity, note, drums, drum_note, fill, top):
        assert not never & allowed(grammar, state)


def test_errors_name_each_violation(jsb_test_files):
    piece = piece_from_score(load_score(jsb_test_files[0]))
    ids, _ = body(piece, eos=False)
    grammar = Grammar(VOCAB, piece.programs)
    state = grammar.bar_state((4, 4))
    first_bar = ids[: ids.index(VOCAB.bar_id)]
    assert grammar.errors(first_bar, state) == []
    swapped = [VOCAB["Track_1"] if i == VOCAB["Track_0"] else i for i in first_bar]
    assert "'Track_1' cannot follow phase 'bar'" in grammar.errors(swapped, state)[0]
    positions = [i for i in first_bar if VOCAB.kind(i) == "Pos"]
    backwards = list(first_bar)
    backwards[backwards.index(positions[1])] = positions[0]  # the soprano's second onset goes back
    assert "'Pos_0' cannot follow phase 'note'" in grammar.errors(backwards, state)[0]
    low = [VOCAB["Pitch_12"] if VOCAB.kind(i) == "Pitch" else i for i in first_bar]
    assert "'Pitch_12' cannot follow phase 'pos'" in grammar.errors(low, state)[0]
    cut = first_bar[: first_bar.index(VOCAB.spans["Vel"].start + 10) + 1]
    assert grammar.errors(cut, state) == ["the sequence ends inside a note (phase 'vel')"]


def test_errors_on_a_track_the_header_lacks_are_listed_not_raised():
    grammar = Grammar(VOCAB, [19])  # one track
    ids = [VOCAB["Track_3"], VOCAB["Pos_0"], VOCAB["Pitch_60"], VOCAB["Vel_9"], VOCAB["Dur_6"]]
    errors = grammar.errors(ids, grammar.bar_state((4, 4)))
    assert errors and "'Track_3' cannot follow phase 'bar'" in errors[0]


def _prompt(score, bars=1):
    piece = piece_from_score(first_bars(score, bars))
    return piece, piece_ids(VOCAB, piece, style="bach", eos=False)


def _sample_bar(model, grammar, context, meter, seed, constrained=True):
    """One bar sampled after ``context`` (with or without the grammar's masks); the ids after ``Bar``."""
    decoder = Decoder(model, grammar, Sampling(top_p=None, generator=torch.Generator().manual_seed(seed)))
    decoder.start(context + [VOCAB.bar_id])
    if constrained:
        ids, state, stopped = decoder.run(grammar.bar_state(meter), lambda t, s: t == VOCAB.bar_id, 2000)
        assert stopped, f"seed {seed}: the bar did not end within the context"
        return ids[:-1]
    out = []
    generator = torch.Generator().manual_seed(seed)
    while decoder.room > 0 and len(out) < 12:
        token = int(sample(decoder.logits, generator=generator)[0])
        if token == VOCAB.bar_id:
            break
        out.append(token)
        decoder.feed(token)
    return out


def _follows(grammar, ids, state) -> bool:
    """Whether every id is allowed where it comes (stops at the first one that is not)."""
    for token in ids:
        state = grammar.advance(state, token)
        if state is None:
            return False
    return True


def _check_decodes(grammar, ids, meter, programs):
    assert grammar.errors(ids, grammar.bar_state(meter)) == []
    parsed = parse_ids(VOCAB, [VOCAB.bar_id, *ids], meter)
    notes = parsed.notes
    assert parsed.meters == [meter] and len(notes) == sum(VOCAB.kind(i) == "Dur" for i in ids)
    assert set(notes[:, BAR].tolist()) <= {0} and notes[:, POS].max(initial=0) < bar_positions(*meter)
    pitched = np.asarray([programs[t] != DRUMS for t in notes[:, TRACK]], bool)
    assert notes[pitched, PITCH].min(initial=60) >= PITCH_RANGE[0]
    assert notes[pitched, PITCH].max(initial=60) <= PITCH_RANGE[1]
    return notes


def test_constrained_samples_of_an_untrained_model_always_decode(tiny_model, jsb_test_files):
    """The 100 % guarantee: near-uniform samples of an untrained model, masked by the grammar, always
    parse to notes inside their bar and range (20 seeds, 4/4 and 6/8); unmasked, they break it at once."""
    score = load_score(jsb_test_files[3])
    del score.tracks[1:3]  # soprano and bass: bars short enough for the context
    six_eight = score.copy()
    six_eight.time_signatures = [TimeSignature(0, 6, 8)]
    notes = 0
    for prompt, meter in ((score, (4, 4)), (six_eight, (6, 8))):
        piece, context = _prompt(prompt)
        grammar = Grammar(VOCAB, piece.programs)
        broken = 0
        for seed in range(10):
            ids = _sample_bar(tiny_model.model, grammar, context, meter, seed)
            notes += len(_check_decodes(grammar, ids, meter, piece.programs))
            raw = _sample_bar(tiny_model.model, grammar, context, meter, seed, constrained=False)
            broken += not _follows(grammar, raw, grammar.bar_state(meter))
        assert broken == 10, "an untrained model's unmasked samples should break the grammar"
    assert notes > 100


def test_constrained_drum_samples_decode(tiny_model, freedoom_piece):
    """A Freedoom piece with drums in 3/4: drums may use every key, the other tracks the piano range."""
    piece = piece_from_score(load_score(freedoom_piece("freedoom1_D_E1M8")))
    assert piece.programs == [DRUMS, 33, 4, 89, 91, 52] and piece.meters[72] == (3, 4)
    rhythm = piece.notes[piece.notes[:, TRACK] < 2]  # drums and bass: bars short enough for the context
    piece = Piece(piece.programs[:2], piece.meters, piece.tempos, rhythm, piece.names[:2])
    context = piece_ids(VOCAB, piece, 72, 73, style="jazz", eos=False)  # bar 73 has both
    grammar = Grammar(VOCAB, piece.programs)
    drums = piece.programs.index(DRUMS)
    drum_pitches = []
    for seed in range(3):
        ids = _sample_bar(tiny_model.model, grammar, context, (3, 4), seed)
        notes = _check_decodes(grammar, ids, (3, 4), piece.programs)
        drum_pitches += notes[notes[:, TRACK] == drums, PITCH].tolist()
    assert min(drum_pitches) < PITCH_RANGE[0] or max(drum_pitches) > PITCH_RANGE[1]


def test_constrained_fill_samples_decode(tiny_model, jsb_test_files):
    piece = piece_from_score(first_bars(load_score(jsb_test_files[4]), 3))
    slots = [(1, 2), (2, 2)]  # the tenor in bars 2-3
    context = piece_ids(VOCAB, piece, style="bach", fills=slots, append_fills=False)
    grammar = Grammar(VOCAB, piece.programs)
    for seed in range(5):
        decoder = Decoder(tiny_model.model, grammar, Sampling(generator=torch.Generator().manual_seed(seed)))
        decoder.start(context + [VOCAB["FillStart"], VOCAB["Track_2"]])
        state = grammar.segment_state(2, (4, 4), fill=True)
        ids, state, stopped = decoder.run(state, lambda t, s: t == VOCAB["FillEnd"], decoder.room)
        assert stopped and ids[-1] == VOCAB["FillEnd"] and state.phase == "end"
        assert grammar.errors(ids, grammar.segment_state(2, (4, 4), fill=True)) == []
        parsed = parse_ids(VOCAB, context + [VOCAB["FillStart"], VOCAB["Track_2"], *ids])
        assert parsed.fills == slots and parsed.filled == 1
        new = parsed.notes[(parsed.notes[:, BAR] == 1) & (parsed.notes[:, TRACK] == 2)]
        assert len(new) == sum(VOCAB.kind(i) == "Dur" for i in ids)
        assert new[:, POS].max(initial=0) < 48 and new[:, PITCH].min(initial=60) >= PITCH_RANGE[0]


def test_active_tracks_play_in_every_bar_they_are_written_in():
    vocab = Vocab()
    grammar = Grammar(vocab, [19, DRUMS], active=[1])
    meter = (4, 4)
    track1 = vocab.spans["Track"].id(1)
    # Track 0 is not active: it may close its (empty) segment at once.
    assert bool(grammar.mask(grammar.segment_state(0, meter))[track1])
    # Track 1 (the drums) is active: no Bar before its first note, Bar allowed after one.
    state = grammar.segment_state(1, meter)
    assert not bool(grammar.mask(state)[vocab.bar_id])
    for name in ("Pos_0", "Pitch_36", "Vel_10", "Dur_2"):
        state = grammar.advance(state, vocab[name])
        assert state is not None
    assert bool(grammar.mask(state)[vocab.bar_id])
    # In a fill the slot may stay empty: FillEnd is allowed at once...
    assert bool(grammar.mask(grammar.segment_state(1, meter, fill=True))[vocab["FillEnd"]])
    # ...unless the fill must play (accompany's new parts): then only after its first note.
    state = grammar.segment_state(0, meter, fill=True, must_play=True)
    assert not bool(grammar.mask(state)[vocab["FillEnd"]])
    for name in ("Pos_12", "Pitch_60", "Vel_10"):
        state = grammar.advance(state, vocab[name])
        assert state is not None and not bool(grammar.mask(state)[vocab["FillEnd"]])
    assert bool(grammar.mask(grammar.advance(state, vocab["Dur_2"]))[vocab["FillEnd"]])


def test_track_ranges_bound_the_pitches_of_sampled_fills(tiny_model, jsb_test_files):
    """A part's written range (accompany's bass voice, 36..62 here narrowed to 40..50): the near-uniform
    samples of an untrained model stay inside it, the other tracks keep the piano range."""
    piece = piece_from_score(first_bars(load_score(jsb_test_files[4]), 3))
    slots = [(1, 3), (2, 3)]  # the bass in bars 2-3
    context = piece_ids(VOCAB, piece, style="bach", fills=slots, append_fills=False)
    grammar = Grammar(VOCAB, piece.programs, ranges={3: (40, 50)})
    state = grammar.segment_state(3, (4, 4), fill=True)
    state = grammar.advance(state, VOCAB["Pos_0"])
    assert {n for n in allowed(grammar, state) if n.startswith("Pitch")} == {
        f"Pitch_{p}" for p in range(40, 51)
    }
    tenor = grammar.advance(grammar.segment_state(2, (4, 4)), VOCAB["Pos_0"])
    assert len([n for n in allowed(grammar, tenor) if n.startswith("Pitch")]) == 88  # untouched
    pitches = []
    for seed in range(5):
        decoder = Decoder(tiny_model.model, grammar, Sampling(generator=torch.Generator().manual_seed(seed)))
        decoder.start(context + [VOCAB["FillStart"], VOCAB["Track_3"]])
        ids, _, stopped = decoder.run(
            grammar.segment_state(3, (4, 4), fill=True), lambda t, s: t == VOCAB["FillEnd"], decoder.room
        )
        assert stopped
        pitches += [VOCAB.name(i) for i in ids if VOCAB.kind(i) == "Pitch"]
    values = [int(name.split("_")[1]) for name in pitches]
    assert len(values) > 10 and 40 <= min(values) and max(values) <= 50
    for bad in ({3: (0, 10)}, {3: (60, 50)}, {7: (40, 50)}, {-1: (40, 50)}):
        with pytest.raises(ConfigError, match="pitch range"):
            Grammar(VOCAB, piece.programs, ranges=bad)
    assert Grammar(VOCAB, [DRUMS], ranges={0: (0, 10)}).ranges == {0: (0, 10)}  # drums: any key

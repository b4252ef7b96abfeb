"""The multitrack token format (notewave.symbolic.vocab, piece, layout) on real MIDI: the shipped JSB
test chorales, Freedoom's game music (16 tracks, drums, 3/4, 6/8, meter changes and 10/4 bars),
music21 corpus pieces in 3/4 and 6/8 with pickups."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from symusic import Score, TimeSignature

from notewave.core.midi import bar_grid, load_score
from notewave.errors import ConditioningError, TokenizerError
from notewave.paths import DATA_DIR
from notewave.symbolic.compose import first_bars
from notewave.symbolic.layout import header_ids, parse_ids, piece_ids
from notewave.symbolic.piece import BAR, PITCH, POS, TRACK, piece_from_score, place_notes, token_grid
from notewave.symbolic.vocab import (
    DRUMS,
    DURATIONS,
    KINDS,
    MAX_TRACKS,
    METERS,
    PITCH_RANGE,
    POSITIONS_PER_QUARTER,
    TEMPOS,
    Vocab,
    bar_positions,
    bin_velocity,
    duration_bin,
    tempo_bin,
    velocity_bin,
)

VOCAB = Vocab(["bach", "jazz"])
SATB = ["Soprano", "Alto", "Tenor", "Bass"]


def names(ids) -> list[str]:
    return [VOCAB.name(int(i)) for i in ids]


def expected_ticks(score: Score, keep_tracks: str = "error") -> list[tuple[int, int, int, int, int]]:
    """What the format keeps of ``score``'s notes, in its own ticks: (track, onset, duration, pitch,
    velocity) with the onset on the 12-per-quarter grid, the duration in its bin and the velocity in
    its bin; worked out here independently of the tokenizer (for scores on the grid)."""
    tpq = score.ticks_per_quarter
    out = []
    tracks = [t for t in score.tracks if len(t.notes)]
    for index, track in enumerate(tracks):
        for note in track.notes:
            positions = max(1, round(note.duration * POSITIONS_PER_QUARTER / tpq))
            ticks = DURATIONS[int(duration_bin(np.asarray([positions]))[0])] * tpq // POSITIONS_PER_QUARTER
            out.append((index, note.time, ticks, note.pitch, bin_velocity(int(velocity_bin(note.velocity)))))
    return sorted(out)


def placed_ticks(placed) -> list[tuple[int, int, int, int, int]]:
    return sorted((t, n.time, n.duration, n.pitch, n.velocity) for t, notes in placed.items() for n in notes)


# ---- vocabulary --------------------------------------------------------------------------------
def test_vocabulary_kinds_are_contiguous_ranges():
    assert len(VOCAB) == VOCAB.size == len(set(VOCAB.names))
    assert list(VOCAB.spans) == list(KINDS)
    for kind, span in VOCAB.spans.items():
        for token in range(span.start, span.stop):
            assert VOCAB.kind(token) == kind
            assert VOCAB[VOCAB.name(token)] == token
    assert VOCAB.spans["Style"].size == 2 and VOCAB.name(VOCAB.style_id("jazz")) == "Style_jazz"
    assert VOCAB.spans["TimeSig"].size == len(METERS) and VOCAB.spans["Track"].size == MAX_TRACKS
    assert VOCAB.spans["Pos"].size == bar_positions(4, 2) == 96  # the longest bar
    assert (
        VOCAB.instrument_id(DRUMS) == VOCAB["Drums"] and VOCAB.name(VOCAB.instrument_id(19)) == "Program_19"
    )
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        VOCAB.kind(len(VOCAB))
    with pytest.raises(TokenizerError, match="unknown token 'Pitch_128'"):
        VOCAB["Pitch_128"]
    with pytest.raises(ConditioningError, match="-1 \\(drums\\) or 0..127"):
        VOCAB.instrument_id(128)


def test_bins():
    assert [bar_positions(*m) for m in [(4, 4), (3, 4), (6, 8), (7, 4), (2, 2), (12, 8)]] == [
        48,
        36,
        36,
        84,
        48,
        72,
    ]
    assert all(abs(bin_velocity(int(velocity_bin(v))) - v) <= 4 for v in range(1, 128))
    assert list(duration_bin(np.asarray(DURATIONS))) == list(range(len(DURATIONS)))
    assert TEMPOS[0] == 30 and TEMPOS[-1] == 300 and TEMPOS[tempo_bin(80.0)] == 79
    assert all(TEMPOS[tempo_bin(q)] == q for q in TEMPOS)


def test_vocab_save_load_and_wrong_tokenizer_files(tmp_path):
    path = VOCAB.save(tmp_path / "ckpt")
    assert path == tmp_path / "ckpt" / "tokenizer.json"
    loaded = Vocab.load(tmp_path / "ckpt")
    assert loaded.names == VOCAB.names and loaded.styles == ["bach", "jazz"]
    assert Vocab.load(VOCAB.save(tmp_path / "alone.json")).names == VOCAB.names
    meta = json.loads(path.read_text())
    wrong = {
        "missing.json": None,
        "garbage.json": "{not json",
        "list.json": "[1, 2]",
        "format.json": json.dumps({**meta, "format": "remi"}),
        "version.json": json.dumps({**meta, "version": 2}),
        "size.json": json.dumps({**meta, "styles": ["bach"]}),  # one style fewer: 471 ids, not 472
    }
    old = DATA_DIR / "checkpoints" / "chorales" / "tokenizer.json"  # the deleted REMI tokenizer's file
    if old.is_file():
        wrong["remi.json"] = old.read_text()
    for name, text in wrong.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(TokenizerError) as info:
            Vocab.load(tmp_path / name)
        message = str(info.value)
        assert name in message and "\n" not in message, message


def test_unknown_style_lists_the_known_ones():
    with pytest.raises(ConditioningError, match="unknown style 'mozart'.*bach, jazz"):
        VOCAB.style_id("mozart")
    with pytest.raises(ConditioningError, match="unknown style 'mozart'.*bach, jazz"):
        header_ids(VOCAB, [19], (4, 4), 80.0, style="mozart")
    with pytest.raises(ConditioningError, match="styles: none"):
        Vocab().style_id("bach")
    for bad in ["", "two words", "tab\there"]:
        with pytest.raises(ConditioningError, match="non-empty words"):
            Vocab([bad])


# ---- real chorales -----------------------------------------------------------------------------
def test_real_chorales_round_trip_exactly(jsb_test_files):
    for path in jsb_test_files:
        score = load_score(path)
        piece = piece_from_score(score, path.name)
        assert piece.programs == [19, 19, 19, 19] and piece.names == SATB  # SATB on one organ: 4 tracks
        assert len(piece.notes) == score.note_num(), path.name  # nothing merged or dropped
        ids = piece_ids(VOCAB, piece, style="bach")
        assert names(ids[:8]) == ["BOS", "Style_bach", "TimeSig_4/4", "Tempo_79"] + ["Program_19"] * 4
        assert ids[8] == VOCAB.bar_id and ids[-1] == VOCAB.eos_id and ids.count(VOCAB.bar_id) == piece.bars
        parsed = parse_ids(VOCAB, ids)
        assert np.array_equal(parsed.notes, piece.notes), path.name
        assert parsed.meters == piece.meters == [(4, 4)] * piece.bars and parsed.programs == piece.programs
        assert parsed.tempos == [79.0] * piece.bars and parsed.fills == []
        grid = bar_grid(score)
        assert piece.bars == grid.bars == math.ceil(score.end() / 1920)
        assert placed_ticks(place_notes(parsed.notes, grid)) == expected_ticks(score), path.name


def test_satb_tracks_stay_apart_in_every_bar(jsb_test_files):
    score = load_score(jsb_test_files[0])
    piece = piece_from_score(score)
    ids = piece_ids(VOCAB, piece)
    tracks = [VOCAB.name(i) for i in ids if VOCAB.kind(i) == "Track"]
    assert tracks == ["Track_0", "Track_1", "Track_2", "Track_3"] * piece.bars
    parsed = parse_ids(VOCAB, ids)
    for index, track in enumerate(score.tracks):
        mine = parsed.notes[parsed.notes[:, TRACK] == index]
        assert sorted(mine[:, PITCH].tolist()) == sorted(n.pitch for n in track.notes)
    means = [parsed.notes[parsed.notes[:, TRACK] == t, PITCH].mean() for t in range(4)]
    assert means == sorted(means, reverse=True)  # soprano above alto above tenor above bass


def test_fill_layout_moves_slots_after_the_last_bar(jsb_test_files):
    piece = piece_from_score(load_score(jsb_test_files[1]))
    slots = [(2, 1), (2, 3), (3, 1), (3, 3)]  # bars 3-4 of the alto and the bass
    ids = piece_ids(VOCAB, piece, style="bach", fills=slots)
    text = names(ids)
    bars = [i for i, t in enumerate(text) if t == "Bar"]
    for bar in (2, 3):
        segment = text[bars[bar] : bars[bar + 1]]
        assert segment[segment.index("Track_1") + 1 : segment.index("Track_2")] == ["Fill"]
        assert segment[-2:] == ["Track_3", "Fill"]
    assert text.count("Fill") == 4 and "EOS" not in text
    tail = text[len(piece_ids(VOCAB, piece, style="bach", fills=slots, append_fills=False)) :]
    starts = [i for i, t in enumerate(tail) if t == "FillStart"]
    assert starts[0] == 0 and len(starts) == 4 and tail[-1] == "FillEnd"
    assert [tail[i + 1] for i in starts] == ["Track_1", "Track_3", "Track_1", "Track_3"]
    offsets = piece.bar_offsets()
    for (bar, track), start in zip(slots, starts, strict=True):
        rows = piece.notes[offsets[bar] : offsets[bar + 1]]
        expected = rows[rows[:, TRACK] == track]
        body = tail[start + 2 : tail.index("FillEnd", start)]
        assert sum(t.startswith("Dur_") for t in body) == len(expected) > 0
    parsed = parse_ids(VOCAB, ids)
    assert np.array_equal(parsed.notes, piece.notes)  # the slots' notes read back in their bars
    assert parsed.fills == slots and parsed.filled == 4
    unfilled = parse_ids(VOCAB, piece_ids(VOCAB, piece, fills=slots, append_fills=False))
    assert unfilled.filled == 0 and len(unfilled.notes) == len(piece.notes) - sum(
        int(((piece.notes[:, BAR] == b) & (piece.notes[:, TRACK] == t)).sum()) for b, t in slots
    )


def test_a_window_from_a_later_bar_has_its_own_header(jsb_test_files):
    piece = piece_from_score(load_score(jsb_test_files[2]))
    ids = piece_ids(VOCAB, piece, start=5, stop=8)
    assert ids.count(VOCAB.bar_id) == 3 and ids[-1] != VOCAB.eos_id
    parsed = parse_ids(VOCAB, ids)
    window = piece.notes[(piece.notes[:, BAR] >= 5) & (piece.notes[:, BAR] < 8)].copy()
    window[:, BAR] -= 5
    assert np.array_equal(parsed.notes, window)


# ---- other meters ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, meter, step",
    [("bach/bwv269", (3, 4), 3), ("ryansMammoth/LanigansBallJig", (6, 8), 6)],  # 16ths; eighths
)
def test_three_four_and_six_eight_bars(music21_midi, name, meter, step):
    score = load_score(music21_midi(name))
    piece = piece_from_score(score, name)
    bar_ticks = score.ticks_per_quarter * 4 * meter[0] // meter[1]
    assert piece.meters == [meter] * piece.bars and bar_positions(*meter) == 36
    assert piece.bars == math.ceil(score.end() / bar_ticks) >= 8
    assert piece.notes[:, POS].max() < 36 and set((piece.notes[:, POS] % step).tolist()) == {0}
    ids = piece_ids(VOCAB, piece)
    assert VOCAB.name(ids[1]) == f"TimeSig_{meter[0]}/{meter[1]}"
    positions = [int(VOCAB.name(i)[4:]) for i in ids if VOCAB.kind(i) == "Pos"]
    assert max(positions) < 36 and len(positions) > piece.bars
    parsed = parse_ids(VOCAB, ids)
    assert np.array_equal(parsed.notes, piece.notes) and parsed.meters == piece.meters
    placed = place_notes(parsed.notes, bar_grid(score))
    assert placed_ticks(placed) == expected_ticks(score)


def test_meter_changes_are_tokens_in_their_bars(freedoom_piece):
    """Freedoom's D_ROMER2 is in 6/4 with eight bars of 7/4 (bars 115-122)."""
    score = load_score(freedoom_piece("freedoom2_D_ROMER2"))
    piece = piece_from_score(score)
    changes = [b for b in range(1, piece.bars) if piece.meters[b] != piece.meters[b - 1]]
    assert changes == [114, 122] and piece.meters[114:122] == [(7, 4)] * 8
    ids = piece_ids(VOCAB, piece, start=112, stop=124)
    text = names(ids)
    assert text[1] == "TimeSig_6/4"
    bars = [i for i, t in enumerate(text) if t == "Bar"]
    opening = [text[b + 1] for b in bars]
    assert opening == ["Track_0"] * 2 + ["TimeSig_7/4"] + ["Track_0"] * 7 + ["TimeSig_6/4", "Track_0"]
    parsed = parse_ids(VOCAB, ids)
    assert parsed.meters == piece.meters[112:124]
    window = piece.notes[(piece.notes[:, BAR] >= 112) & (piece.notes[:, BAR] < 124)].copy()
    window[:, BAR] -= 112
    assert np.array_equal(parsed.notes, window)
    assert window[(window[:, BAR] >= 2) & (window[:, BAR] < 10), POS].max() >= 72  # 7/4 bars use beat 7
    late = parse_ids(VOCAB, piece_ids(VOCAB, piece, start=116, stop=118))
    assert names(piece_ids(VOCAB, piece, start=116, stop=118))[1] == "TimeSig_7/4"  # a window's header
    assert late.meters == [(7, 4), (7, 4)]


def test_bars_longer_than_any_token_are_written_as_two(freedoom_piece):
    """Freedoom's D_ULTIMA (5/4, 7/4, 3/4, 10/4, 8/4 ...): each 10/4 bar is two 5/4 token bars, the
    8/4 bars borrow 4/2; the notes come back onto the score's own grid exactly."""
    score = load_score(freedoom_piece("freedoom2_D_ULTIMA"))
    grid = bar_grid(score)
    tokens, starts = token_grid(grid)
    assert grid.meters.count((10, 4)) == 3 and tokens.bars == grid.bars + 3
    for bar, meter in enumerate(grid.meters):
        parts = tokens.meters[starts[bar] : starts[bar + 1]]
        assert parts == ([(5, 4), (5, 4)] if meter == (10, 4) else [meter])
        assert (
            tokens.lines[starts[bar]] == grid.lines[bar]
            and tokens.lines[starts[bar + 1]] == grid.lines[bar + 1]
        )
    piece = piece_from_score(score)
    assert piece.bars == tokens.bars and piece.meters == tokens.meters
    first = grid.meters.index((10, 4))
    ids = piece_ids(VOCAB, piece, start=starts[first] - 1, stop=starts[first + 1] + 1)
    opening = [names(ids)[i + 1] for i, t in enumerate(names(ids)) if t == "Bar"]
    assert opening == ["Track_0", "TimeSig_5/4", "Track_0", "TimeSig_7/4"]  # 3/4, 5/4 + 5/4, 7/4
    parsed = parse_ids(VOCAB, piece_ids(VOCAB, piece))
    assert np.array_equal(parsed.notes, piece.notes)
    assert parsed.meters == [(4, 2) if m == (8, 4) else m for m in piece.meters]  # 8/4 reads as its twin
    placed = place_notes(piece.notes, tokens)  # every onset back where it was (already on the grid)
    assert {n.time for notes in placed.values() for n in notes} == {
        n.time for t in score.tracks for n in t.notes
    }


@pytest.mark.parametrize("bars", [1, 3])
def test_a_short_last_bar_is_written_with_the_bar_before(jsb_test_files, bars):
    """A chorale cut after ``bars`` bars of 4/4 and an eighth more, in a 1/8 bar of its own: the
    last two bars are one 9/8 bar of tokens; every other bar stays, and the notes place back."""
    score = first_bars(load_score(jsb_test_files[2]), bars + 1)
    eighth = bars * 1920 + 240
    score = score.clip(0, eighth, clip_end=True)
    score.time_signatures = [TimeSignature(0, 4, 4), TimeSignature(bars * 1920, 1, 8)]
    grid = bar_grid(score, until=eighth)
    assert grid.meters == [(4, 4)] * bars + [(1, 8)]
    tokens, starts = token_grid(grid)
    assert tokens.meters == [(4, 4)] * (bars - 1) + [(9, 8)]
    assert list(tokens.lines) == [1920 * b for b in range(bars)] + [eighth]
    assert list(starts) == [*range(bars), bars - 1, bars]
    piece = piece_from_score(score, grid=tokens)
    assert placed_ticks(place_notes(piece.notes, tokens)) == expected_ticks(score)


def test_meters_no_bars_can_write_are_refused_by_name(jsb_test_files):
    score = load_score(jsb_test_files[0])
    score.time_signatures = [TimeSignature(0, 4, 4), TimeSignature(1920, 3, 32)]  # off the position grid
    with pytest.raises(TokenizerError) as info:
        piece_from_score(score, "chorale.mid")
    message = str(info.value)
    assert "chorale.mid: time signature 3/32 (at tick 1920)" in message and "\n" not in message
    assert (
        "supported: 1/4, 2/4, 3/4, 4/4, 5/4, 6/4, 7/4, 2/2, 3/2, 4/2, 3/8, 5/8, 6/8, 7/8, 9/8, 12/8"
        ", any meter of the same bar length as one of them (4/8 as 2/4) and bars a few of them fill"
        in message
    )
    score.time_signatures = [TimeSignature(0, 5, 32)]
    with pytest.raises(TokenizerError, match=r"chorale: time signature 5/32 \(at tick 0\).*supported: 1/4"):
        piece_from_score(score, "chorale")
    with pytest.raises(TokenizerError, match="11/8 has no token; supported: 1/4"):
        VOCAB.meter_id(11, 8)  # one token per bar: a split bar's parts have theirs


@pytest.mark.parametrize(
    ("meter", "parts"),
    [
        ((10, 4), [(5, 4)] * 2),
        ((6, 2), [(3, 2)] * 2),
        ((9, 4), [(3, 4)] * 3),
        ((15, 8), [(5, 8)] * 3),
        ((4, 1), [(4, 2)] * 2),
        ((11, 8), [(6, 8), (5, 8)]),
        ((13, 8), [(7, 8), (6, 8)]),
    ],
)
def test_a_chorale_in_a_long_or_odd_meter_round_trips(jsb_test_files, meter, parts):
    score = load_score(jsb_test_files[4])
    score.time_signatures = [TimeSignature(0, *meter)]
    grid = bar_grid(score)
    tokens, starts = token_grid(grid)
    assert tokens.meters == parts * grid.bars and list(starts) == list(range(0, tokens.bars + 1, len(parts)))
    assert all(
        tokens.lines[starts[b] + i + 1] - tokens.lines[starts[b] + i] == 480 * 4 * n // d
        for b in range(grid.bars)
        for i, (n, d) in enumerate(parts)
    )
    piece = piece_from_score(score)
    assert placed_ticks(place_notes(piece.notes, tokens)) == expected_ticks(score)
    assert parse_ids(VOCAB, piece_ids(VOCAB, piece)).meters == piece.meters


@pytest.mark.parametrize(
    ("meter", "twin"), [((8, 8), (4, 4)), ((2, 1), (4, 2)), ((16, 16), (4, 4)), ((1, 1), (4, 4))]
)
def test_a_meter_without_a_token_borrows_its_twin_of_the_same_bar_length(jsb_test_files, meter, twin):
    """A chorale (4/4) rewritten in a meter without a token: the same tokens as the chorale in the
    twin meter (same bar length), its own meter kept in the piece and its notes placed back onto
    its own grid exactly."""
    score, twin_score = load_score(jsb_test_files[3]), load_score(jsb_test_files[3])
    score.time_signatures = [TimeSignature(0, *meter)]
    twin_score.time_signatures = [TimeSignature(0, *twin)]
    grid, twin_piece = bar_grid(score), piece_from_score(twin_score)
    piece = piece_from_score(score, "chorale", grid)
    assert grid.meters == piece.meters == [meter] * twin_piece.bars  # the score keeps its own meter
    assert piece_ids(VOCAB, piece, style="bach") == piece_ids(VOCAB, twin_piece, style="bach")
    assert np.array_equal(piece.notes, twin_piece.notes)
    assert placed_ticks(place_notes(piece.notes, grid)) == expected_ticks(score)


def test_borrowed_meters_keep_their_bar_length_and_style_of_beat():
    assert VOCAB.meter_id(4, 8) == VOCAB.meter_id(2, 4) and VOCAB.meter_id(10, 8) == VOCAB.meter_id(5, 4)
    assert VOCAB.meter_id(12, 16) == VOCAB.meter_id(6, 8)  # compound: 4 dotted eighths
    assert VOCAB.meter_id(6, 16) == VOCAB.meter_id(3, 8) and VOCAB.meter_id(1, 2) == VOCAB.meter_id(2, 4)
    for n, d in [(4, 8), (10, 8), (12, 16), (6, 16), (1, 2), (2, 1), (14, 8), (8, 4), (18, 16)]:
        twin = METERS[VOCAB.meter_id(n, d) - VOCAB.spans["TimeSig"].start]
        assert bar_positions(*twin) * d == n * 4 * POSITIONS_PER_QUARTER
    for n, d in [(11, 8), (15, 8), (9, 4), (10, 4), (6, 2), (1, 8), (3, 16)]:
        with pytest.raises(TokenizerError, match=f"time signature {n}/{d} has no token"):
            VOCAB.meter_id(n, d)


# ---- drums and many tracks ---------------------------------------------------------------------
def test_freedoom_sixteen_tracks_with_drums_round_trip(freedoom_piece):
    score = load_score(freedoom_piece("freedoom2_D_ADRIAN"))
    sounding = [t for t in score.tracks if len(t.notes)]
    piece = piece_from_score(score)
    assert piece.tracks == len(sounding) == MAX_TRACKS
    assert piece.programs == [DRUMS if t.is_drum else t.program for t in sounding] and DRUMS in piece.programs
    ids = piece_ids(VOCAB, piece, start=40, stop=44)
    header = names(ids[: 3 + MAX_TRACKS])
    drum = piece.programs.index(DRUMS)
    assert header[3 + drum] == "Drums" and header.count("Drums") == 1
    assert header[3:] == ["Drums" if p == DRUMS else f"Program_{p}" for p in piece.programs]
    assert all(f"Track_{t}" in names(ids) for t in range(16))
    parsed = parse_ids(VOCAB, ids)
    window = piece.notes[(piece.notes[:, BAR] >= 40) & (piece.notes[:, BAR] < 44)].copy()
    window[:, BAR] -= 40
    assert np.array_equal(parsed.notes, window) and parsed.programs == piece.programs
    assert (window[:, TRACK] == drum).sum() > 20
    # the whole piece round-trips too, and every note lands within half a position of its own tick
    full = parse_ids(VOCAB, piece_ids(VOCAB, piece))
    assert np.array_equal(full.notes, piece.notes)
    placed = place_notes(full.notes, bar_grid(score))
    assert sum(len(notes) for notes in placed.values()) == len(piece.notes)
    half = score.ticks_per_quarter / POSITIONS_PER_QUARTER / 2
    exact = 0
    for index, track in enumerate(sounding):
        onsets: dict[int, list[int]] = {}
        for note in placed[index]:
            onsets.setdefault(note.pitch, []).append(note.time)
        for note in track.notes:
            if not track.is_drum and not PITCH_RANGE[0] <= note.pitch <= PITCH_RANGE[1]:
                assert note.pitch not in onsets  # dropped: outside the piano range
                continue
            nearest = min(abs(note.time - t) for t in onsets[note.pitch])
            assert nearest <= half, (track.name, note)
            exact += nearest == 0
    assert exact >= 0.9 * len(piece.notes)


def _seventeen_tracks(freedoom_piece, jsb_test_files) -> Score:
    score = load_score(freedoom_piece("freedoom2_D_ADRIAN"))
    chorale = load_score(jsb_test_files[0])
    score.tracks.append(chorale.tracks[3].copy())  # the chorale's bass (at 480 tpq it is sparse here)
    return score


def test_more_than_sixteen_tracks(freedoom_piece, jsb_test_files):
    score = _seventeen_tracks(freedoom_piece, jsb_test_files)
    with pytest.raises(
        TokenizerError, match="big.mid has 17 tracks with notes; the token format holds at most 16"
    ):
        piece_from_score(score, "big.mid")
    sounding = [t for t in score.tracks if len(t.notes)]
    counts = [len(t.notes) for t in sounding]
    smallest = counts.index(min(counts))
    piece = piece_from_score(score, keep_tracks="largest")
    kept = [t for i, t in enumerate(sounding) if i != smallest]
    assert piece.tracks == 16 and piece.names == [t.name for t in kept]  # in their order
    assert piece.programs == [DRUMS if t.is_drum else t.program for t in kept]


def test_header_lists_meter_tempo_and_instruments():
    ids = header_ids(VOCAB, [0, DRUMS, 33], (6, 8), 133.0, style="jazz")
    assert names(ids) == ["BOS", "Style_jazz", "TimeSig_6/8", "Tempo_133", "Program_0", "Drums", "Program_33"]
    assert names(header_ids(VOCAB, [], (4, 4), 120.0)) == ["BOS", "TimeSig_4/4", "Tempo_123"]
    with pytest.raises(TokenizerError, match="10/4 has no token"):
        header_ids(VOCAB, [0], (10, 4), 120.0)  # a window starts on a token bar

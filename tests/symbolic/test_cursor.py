"""The metrical cursor features on real JSB chorale and MMA groove tokens: what they say against the
notes themselves, token-by-token decoding against whole sequences, and a zero-initialised table
that leaves a trained model's logits unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from symusic import Note, Score, TimeSignature, Track

from notewave.core.midi import load_score
from notewave.errors import ConfigError
from notewave.symbolic.cursor import (
    COLUMNS,
    CURSOR_ROWS,
    CURSOR_VALUES,
    HARMONY_NONE,
    HARMONY_ROWS,
    HARMONY_SLOTS,
    LEFT_VALUES,
    NONE,
    NONE_ROW,
    CursorTracker,
    cursor_features,
)
from notewave.symbolic.decode import Decoder, MidiStep, Sampling
from notewave.symbolic.grammar import Grammar
from notewave.symbolic.layout import piece_ids
from notewave.symbolic.model import MidiLM, config_for
from notewave.symbolic.piece import piece_from_score
from notewave.symbolic.vocab import DURATIONS, Vocab, bar_positions


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab(["bach", "rock-pop"])


def _expected_cursor(piece, bar: int, track: int, upto: int) -> int:
    """Latest note end (positions from bar ``bar``'s line) of ``track`` over its notes in earlier
    bars and its first ``upto`` notes of ``bar``, as the cursor should report it."""
    starts = np.cumsum([0] + [bar_positions(*m) for m in piece.meters])
    mine = piece.notes[(piece.notes[:, 0] == track) & (piece.notes[:, 1] <= bar)]
    earlier, this = mine[mine[:, 1] < bar], mine[mine[:, 1] == bar][:upto]
    ends = [starts[b] + pos + DURATIONS[dur] - starts[bar] for _, b, pos, _, _, dur in [*earlier, *this]]
    return max([0, *ends])


def _expected_harmony(piece, bar: int, track: int, pos: int) -> tuple[int, ...]:
    """Rows of the pitches that tracks other than ``track`` sound at ``pos`` of ``bar``, as far as
    the bar-major sequence has written them: earlier tracks of this bar, any track's notes held
    over from earlier bars."""
    starts = np.cumsum([0] + [bar_positions(*m) for m in piece.meters])
    now = starts[bar] + pos
    sounding = set()
    for tr, b, p, pitch, _, dur in piece.notes.tolist():
        written = b < bar or (b == bar and tr < track)
        if tr != track and written and starts[b] + p <= now < starts[b] + p + DURATIONS[dur]:
            sounding.add(pitch)
    rows = [CURSOR_ROWS + p for p in sorted(sounding, reverse=True)[:HARMONY_SLOTS]]
    return tuple(rows + [HARMONY_NONE] * (HARMONY_SLOTS - len(rows)))


def test_cursor_is_where_each_chorale_voice_has_reached(vocab, jsb_test_files):
    piece = piece_from_score(load_score(jsb_test_files[0]))
    ids = piece_ids(vocab, piece, style="bach")
    rows = cursor_features(vocab, ids)
    assert rows.shape == (len(ids), COLUMNS) and rows.dtype == np.int64
    spans = vocab.spans
    bar, track, notes_in_segment, checked, heard = -1, -1, 0, 0, 0
    for token, (cursor, left, *harmony) in zip(ids, rows.tolist(), strict=True):
        kind = vocab.kind(token)
        if token == vocab.bar_id:
            bar += 1
        if kind == "Track":
            track, notes_in_segment = token - spans["Track"].start, 0
        if kind == "Dur":
            notes_in_segment += 1
        if kind in ("Track", "Dur"):
            expected = _expected_cursor(piece, bar, track, notes_in_segment)
            assert cursor == min(expected, CURSOR_VALUES - 1), (bar, track, notes_in_segment)
            length = bar_positions(*piece.meters[bar])
            assert left - (CURSOR_VALUES + 1) == min(max(length - expected, 0), LEFT_VALUES - 1)
            checked += 1
        elif kind in ("special", "Style", "TimeSig", "Tempo", "Program"):
            assert (cursor, left, *harmony) == NONE_ROW
        if kind == "Pos":
            assert tuple(harmony) == _expected_harmony(piece, bar, track, token - spans["Pos"].start)
            heard += track > 0 and harmony[0] != HARMONY_NONE
    assert checked > len(piece.notes)
    assert heard > 0.5 * sum(1 for t in ids if vocab.kind(t) == "Pos")  # the lower voices hear the upper
    # a chorale voice nearly always fills its bar: at a segment's end there is nothing left
    ends = [i for i in range(1, len(ids)) if vocab.kind(ids[i]) == "Track" or ids[i] == vocab.bar_id]
    filled = [rows[i - 1, 1] == CURSOR_VALUES + 1 for i in ends if vocab.kind(ids[i - 1]) == "Dur"]
    assert np.mean(filled) > 0.9


def test_batch_and_token_by_token_agree_on_grooves_with_fills(vocab, mma_dir):
    for f in sorted((mma_dir / "train").glob("*.mid"))[:2]:
        piece = piece_from_score(load_score(f))
        seq = piece_ids(vocab, piece, 0, 4, style="rock-pop", fills=[(1, 0), (2, 1)])
        batch = cursor_features(vocab, [seq, seq])
        assert batch.shape == (2, len(seq), COLUMNS)
        tracker = CursorTracker(vocab)
        assert [tracker.feed(t) for t in seq] == [tuple(r) for r in batch[1].tolist()]
        assert (batch[0, :, 0] > 0).any()


def test_meter_changes_held_notes_and_fills(vocab):
    """Bars in 4/4, 3/4, 4/4 (48, 36, 48 positions). Melody: a note on beat 4 of bar 1 held to
    beat 2 of bar 2. Bass: one note held over all of bar 2 into beat 2 of bar 3. The melody's
    3/4 slot, filled, is measured in its own bar, with its carry-over."""
    score = Score(480)  # 40 ticks per position
    meters = [TimeSignature(0, 4, 4), TimeSignature(1920, 3, 4), TimeSignature(3360, 4, 4)]
    score.time_signatures.extend(meters)
    melody, bass = Track("Melody", 73), Track("Bass", 32)
    melody.notes.extend([Note(0, 1440, 72, 80), Note(1440, 960, 74, 80), Note(2400, 960, 76, 80)])
    bass.notes.extend([Note(0, 3840, 40, 80), Note(3840, 1440, 43, 80)])
    score.tracks.extend([melody, bass])
    piece = piece_from_score(score)
    assert piece.meters[:3] == [(4, 4), (3, 4), (4, 4)]
    ids = piece_ids(vocab, piece, 0, 3, fills=[(1, 0)])
    rows = [tuple(r[:2]) for r in cursor_features(vocab, ids).tolist()]
    tracks = [i for i, t in enumerate(ids) if vocab.kind(t) == "Track"]
    left = CURSOR_VALUES + 1  # the row of "0 positions left"
    # bar 1: the melody's second note ends at 36 + 24 = 60, past the bar; the bass at 96
    melody_bar1, bass_bar1 = tracks[0], tracks[1]
    assert rows[bass_bar1 - 1] == (60, left + 0)
    end_of_bar1 = ids.index(vocab.bar_id, bass_bar1)
    assert ids[end_of_bar1 + 1] == vocab.meter_id(3, 4) and rows[end_of_bar1 + 1] == NONE
    assert rows[end_of_bar1 - 1] == (96, left + 0)
    # bar 2 (3/4): the melody starts 12 in (its slot is a Fill), the bass 48 in, beyond the bar
    assert ids[tracks[2] + 1] == vocab["Fill"] and rows[tracks[2]] == (12, left + 24)
    assert rows[tracks[3]] == (48, left + 0)
    # bar 3 (4/4): the bass is 48 - 36 = 12 in; the melody's carry ended in bar 2
    assert rows[tracks[4]] == (0, left + 48) and rows[tracks[5]] == (12, left + 36)
    # the fill of bar 2's melody: its 3/4 bar (24 left, not the last bar's 36) and carry-over 12
    fill = tracks[6]
    assert ids[fill - 1] == vocab["FillStart"] and rows[fill] == (12, left + 24)
    assert rows[fill + 4] == (36, left + 0)  # its note: Pos_12 Pitch Vel Dur_24
    harmony = cursor_features(vocab, ids)[fill + 1, 2:]  # at the fill's Pos_12: the bass's held E2
    assert vocab.kind(ids[fill + 1]) == "Pos" and harmony[0] == CURSOR_ROWS + 40
    assert (harmony[1:] == HARMONY_NONE).all()
    assert melody_bar1 < bass_bar1


def test_zero_initialised_cursor_keeps_logits_and_decoding_matches(vocab, jsb_test_files, tmp_path):
    torch.manual_seed(0)
    model = MidiLM(config_for("tiny", vocab)).eval()
    piece = piece_from_score(load_score(jsb_test_files[1]))
    ids = piece_ids(vocab, piece, 0, 3, style="bach")
    x = torch.tensor([ids])
    before = model(x)
    plain = Decoder(model, Grammar(vocab, piece.programs), Sampling(), int8=False)
    plain.start(ids[:10])
    for token in ids[10:]:
        plain.feed(token)  # the lean step (MidiStep) in eval mode
    assert plain.step is not None
    torch.testing.assert_close(plain.logits, before[:, -1], atol=1e-4, rtol=1e-4)
    model.add_cursor()
    cursor = torch.from_numpy(cursor_features(vocab, ids))[None]
    assert torch.equal(model(x, cursor=cursor), before)
    with pytest.raises(ConfigError, match="cursor"):
        model(x)
    torch.nn.init.normal_(model.cursor_emb.weight, std=0.5)  # as if trained
    model.save_pretrained(tmp_path / "ck")
    loaded = MidiLM.from_pretrained(tmp_path / "ck")
    assert loaded.config.cursor
    full = loaded(x, cursor=cursor).detach()
    assert not torch.allclose(full, before, atol=1e-3)  # the features reach the logits
    decoder = Decoder(loaded, Grammar(vocab, piece.programs), Sampling(), int8=False)
    decoder.start(ids[:10])
    for token in ids[10:]:
        decoder.feed(token)
    torch.testing.assert_close(decoder.logits, full[:, -1], atol=1e-4, rtol=1e-4)
    # the lean step gives exactly forward's numbers for the same cache
    cache = loaded.new_cache(1)
    loaded(x[:, :-1], cache, cursor[:, :-1])
    twin = loaded.new_cache(1)
    loaded(x[:, :-1], twin, cursor[:, :-1])
    assert torch.equal(
        MidiStep(loaded)(x[:, -1:], cursor[:, -1:], cache), loaded(x[:, -1:], twin, cursor[:, -1:])
    )
    with pytest.raises(ConfigError, match="cursor"):
        MidiStep(loaded)(x[:, -1:], None, cache)
    with pytest.raises(ConfigError, match="shape"):
        loaded(x, cursor=cursor[..., 0])
    with pytest.raises(ConfigError, match="already"):
        loaded.add_cursor()
    # the harmony rows grow the table at zero: same logits, then they reach them
    loaded.add_cursor(harmony=True)
    assert loaded.config.harmony and loaded.cursor_emb.num_embeddings == CURSOR_ROWS + HARMONY_ROWS
    assert torch.equal(loaded(x, cursor=cursor), full)
    torch.nn.init.normal_(loaded.cursor_emb.weight[CURSOR_ROWS:], std=0.5)
    assert not torch.allclose(loaded(x, cursor=cursor), full, atol=1e-3)

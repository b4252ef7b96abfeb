import pytest
from symusic import Score

from notewave.errors import ConditioningError, TokenizerError
from notewave.symbolic.tokenizer import MidiTokenizer


def onsets_and_pitches(score: Score) -> list[tuple[float, int]]:
    tpq = score.ticks_per_quarter
    return sorted((n.time / tpq, n.pitch) for t in score.tracks for n in t.notes)


def test_real_chorale_round_trip_keeps_every_note(jsb_test_files):
    tok = MidiTokenizer(["bach"])
    for path in jsb_test_files[:5]:
        score = Score(str(path))
        ids = tok.encode(score, style="bach")
        names = [tok.token_name(i) for i in ids[:4]]
        assert names == ["BOS_None", "Style_bach", "Instrument_19", "Bar_None"]
        decoded = tok.decode(ids)
        # 16th-note grid and 80 BPM survive REMI exactly (beat resolution 8 per quarter).
        assert onsets_and_pitches(decoded) == onsets_and_pitches(score)
        assert decoded.time_signatures[0].numerator == 4


def test_conditioning_tokens_and_unknown_style(tmp_path):
    tok = MidiTokenizer(["bach", "palestrina"])
    assert tok.vocab_size == tok.base_size + 2 + 129
    assert tok.token_name(tok.instrument_id(-1)) == "Instrument_-1"
    with pytest.raises(ConditioningError, match="unknown style 'mozart'.*bach, palestrina"):
        tok.prefix("mozart")
    with pytest.raises(ConditioningError):
        tok.instrument_id(128)
    with pytest.raises(ConditioningError):
        MidiTokenizer(["two words"])
    path = tok.save(tmp_path)
    loaded = MidiTokenizer.load(path)
    assert loaded.styles == ["bach", "palestrina"] and loaded.vocab_size == tok.vocab_size
    with pytest.raises(TokenizerError, match="not found"):
        MidiTokenizer.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="not a valid notewave tokenizer"):
        MidiTokenizer.load(tmp_path / "bad.json")


def test_bpe_shortens_sequences_and_decodes_back(jsb_test_files, tmp_path):
    tok = MidiTokenizer(["bach"])
    base_len = len(tok.encode_body(Score(str(jsb_test_files[0]))))
    tok.train_bpe(700, jsb_test_files[:20])
    assert tok.base_size == 700 and tok.vocab_size == 700 + 1 + 129
    score = Score(str(jsb_test_files[0]))
    ids = tok.encode(score, "bach")
    assert len(ids) - 3 < 0.8 * base_len
    assert onsets_and_pitches(tok.decode(ids)) == onsets_and_pitches(score)
    reloaded = MidiTokenizer.load(tok.save(tmp_path))
    assert reloaded.encode(score, "bach") == ids
    assert len(tok.base_tokens(max(ids[3:]))) >= 1

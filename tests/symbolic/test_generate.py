"""The composer's edits (notewave.symbolic.compose / generate, Composer, the CLI) on real MIDI:
continue, infill and accompany JSB chorales, music21's 3/4 and 6/8 pieces with pickups, Freedoom's
and MMA's multitrack music with drums. The mechanics run on an untrained tiny model (fast; its
samples are near-uniform over what the grammar allows); the shipped composer's quality signals run
once it is shipped."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from symusic import Note, Score, TimeSignature, Track

from notewave.cli import main
from notewave.core.midi import bar_grid, load_score
from notewave.errors import ConditioningError, ConfigError, MidiError, TokenizerError
from notewave.pipelines.composer import Composer
from notewave.symbolic import decode
from notewave.symbolic.compose import _playing_around, first_bars
from notewave.symbolic.decode import Sampling
from notewave.symbolic.generate import continue_piece
from notewave.symbolic.layout import bar_ids, parse_ids
from notewave.symbolic.parts import PARTS, parse_instruments
from notewave.symbolic.piece import BAR, piece_from_score
from notewave.symbolic.vocab import POSITIONS_PER_QUARTER, tempo_bin

SATB = ["Soprano", "Alto", "Tenor", "Bass"]


def layout(score: Score) -> list[tuple[str, int, bool]]:
    return [(t.name, t.program, t.is_drum) for t in score.tracks]


def notes_of(score: Score, tracks=None) -> list[tuple[int, int, int, int, int]]:
    """(track, onset, duration, pitch, velocity) of every note, sorted."""
    return sorted(
        (i, n.time, n.duration, n.pitch, n.velocity)
        for i, t in enumerate(score.tracks)
        if tracks is None or i in tracks
        for n in t.notes
    )


def on_grid(time: int, line: int, tpq: int) -> bool:
    """Whether ``time`` is a 12-per-quarter position from the bar line ``line`` (in ``tpq`` ticks)."""
    position = round((time - line) * POSITIONS_PER_QUARTER / tpq)
    return time - line == round(position * tpq / POSITIONS_PER_QUARTER)


def spy_on_contexts(monkeypatch) -> list[list[int]]:
    """Record every context the decoder reads (each window of a sliding or bar-fill generation)."""
    contexts: list[list[int]] = []
    real = decode.Decoder.start

    def start(self, context):
        contexts.append(list(context))
        return real(self, context)

    monkeypatch.setattr(decode.Decoder, "start", start)
    return contexts


def contains(sequence: list[int], part: list[int]) -> bool:
    return any(sequence[i : i + len(part)] == part for i in range(len(sequence) - len(part) + 1))


def _retimed(tmp_path, path, numerator: int, denominator: int):
    """``path`` with its time signatures replaced by one n/d at tick 0, written under ``tmp_path``."""
    score = load_score(path)
    score.time_signatures = [TimeSignature(0, numerator, denominator)]
    out = tmp_path / f"{path.stem}_{numerator}_{denominator}.mid"
    score.dump_midi(str(out))
    return out


@pytest.fixture()
def real_prompt(request, jsb_test_files, music21_midi, freedoom_piece, tmp_path):
    """name -> path of a real piece: a chorale (4/4), Bach's BWV 269 (3/4, one-beat pickup), a jig
    (6/8, eighth-note pickup), Freedoom's D_READ_M (4/4, drums, a tempo map of 93 changes, 1024 ticks
    per quarter); the chorale written in 8/8 and the jig in 12/16 (meters without a token of their
    own: the model reads 4/4 and 6/8)."""
    return {
        "chorale": lambda: jsb_test_files[0],
        "chorale_8_8": lambda: _retimed(tmp_path, jsb_test_files[0], 8, 8),
        "jig_12_16": lambda: _retimed(tmp_path, music21_midi("ryansMammoth/LanigansBallJig"), 12, 16),
        "bwv269": lambda: music21_midi("bach/bwv269"),
        "jig": lambda: music21_midi("ryansMammoth/LanigansBallJig"),
        "read_m": lambda: freedoom_piece("freedoom2_D_READ_M"),
    }[request.param]()


# ---- continue --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "real_prompt, meter",
    [
        ("chorale", (4, 4)),
        ("bwv269", (3, 4)),
        ("jig", (6, 8)),
        ("read_m", (4, 4)),
        ("chorale_8_8", (8, 8)),
        ("jig_12_16", (12, 16)),
    ],
    indirect=["real_prompt"],
)
def test_continuation_keeps_the_prompt_and_adds_exactly_the_bars_asked(tiny_model, real_prompt, meter):
    prompt_bars, bars = 3, 2
    original = load_score(real_prompt)
    prompt = first_bars(original, prompt_bars)
    out = tiny_model.continue_midi(real_prompt, bars=bars, prompt_bars=prompt_bars, seed=0, style="bach")
    assert layout(out) == layout(prompt) == layout(original)  # names, programs, drum flags, order
    assert out.ticks_per_quarter == original.ticks_per_quarter
    assert [(t.time, t.mspq) for t in out.tempos] == [(t.time, t.mspq) for t in prompt.tempos]
    assert len(prompt.tempos) > 10 or "READ_M" not in real_prompt.name  # D_READ_M slows down in bar 1
    signatures = [(s.time, s.numerator, s.denominator) for s in out.time_signatures]
    assert signatures == [(s.time, s.numerator, s.denominator) for s in prompt.time_signatures]
    grid = bar_grid(prompt)
    assert grid.bars == prompt_bars and grid.meters == [meter] * prompt_bars
    full = grid.extended(bars)
    start, end = int(grid.lines[-1]), int(full.lines[-1])
    kept = [n for n in notes_of(out) if n[1] < start]
    assert kept == notes_of(prompt)  # the prompt note for note
    new = [n for n in notes_of(out) if n[1] >= start]
    assert len(new) >= 2 * bars
    assert all(t + d <= end for _, t, d, _, _ in new)  # nothing past the last new bar
    tpq = out.ticks_per_quarter
    for bar in range(bars):
        line = int(full.lines[prompt_bars + bar])
        inside = [n for n in new if line <= n[1] < full.lines[prompt_bars + bar + 1]]
        assert inside, f"new bar {bar + 1} is empty"
        assert all(on_grid(t, line, tpq) for _, t, _, _, _ in inside)
    result = bar_grid(out)
    assert result.bars == prompt_bars + bars and list(result.lines) == list(full.lines)
    assert result.meters == [meter] * (prompt_bars + bars)
    drums = [i for i, t in enumerate(out.tracks) if t.is_drum]
    assert all(21 <= p <= 108 for i, _, _, p, _ in new if i not in drums)


def test_same_seed_same_music_other_seed_other_music(tiny_model, jsb_test_files):
    def run(seed):
        return notes_of(tiny_model.continue_midi(jsb_test_files[5], bars=1, prompt_bars=2, seed=seed))

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_long_continuation_slides_its_window(tiny_model, jsb_test_files, monkeypatch):
    """24 bars from a model whose context holds 256 tokens: the window slides; exactly 24 bars are added."""
    score = first_bars(load_score(jsb_test_files[6]), 2)
    del score.tracks[1:]  # the soprano alone
    piece = piece_from_score(score)
    contexts = spy_on_contexts(monkeypatch)
    vocab, model = tiny_model.vocab, tiny_model.model
    sampling = Sampling(generator=torch.Generator().manual_seed(3))
    result = continue_piece(model, vocab, piece, 24, sampling, style="bach")
    assert model.context == 256 and len(contexts) >= 3
    assert all(len(c) < model.context for c in contexts)
    assert result.bars == piece.bars + 24 and result.meters == [(4, 4)] * 26
    assert np.array_equal(result.notes[: len(piece.notes)], piece.notes)
    new = result.notes[len(piece.notes) :]
    assert new[:, BAR].min() >= 2 and new[:, BAR].max() == 25
    assert len(set(new[:, BAR].tolist())) >= 20  # (an untrained model may leave a bar silent)
    # later windows read from a later bar line: their first bars are generated ones
    later = parse_ids(vocab, contexts[-1])
    assert later.notes[:, BAR].max() >= 1 and not contains(
        contexts[-1], bar_ids(vocab, piece, 0, piece.bar_notes(0), None)
    )


def test_instruments_add_tracks_that_join_in(tiny_model, jsb_test_files):
    prompt = first_bars(load_score(jsb_test_files[2]), 2)
    out = tiny_model.continue_midi(prompt, bars=1, instruments="bass,drums,Lead=81", seed=1)
    assert layout(out) == layout(prompt) + [("Bass", 33, False), ("Drums", 0, True), ("Lead", 81, False)]
    start = int(bar_grid(prompt).lines[-1])
    assert [n for n in notes_of(out) if n[1] < start] == notes_of(prompt)
    for index in (4, 5, 6):
        assert out.tracks[index].notes and all(n.time >= start for n in out.tracks[index].notes)
    # a NAME=PROGRAM part is written in its program's usual range (synth lead C3-C7), as named parts are
    assert all(48 <= n.pitch <= 96 for n in out.tracks[6].notes)
    keys = tiny_model.continue_midi(prompt, bars=1, instruments="bass,drums,Keys=4", seed=1)
    outside = [n.pitch for n in keys.tracks[6].notes if not 48 <= n.pitch <= 96]  # a piano: no bound
    assert len(out.tracks[6].notes) >= 5 and outside, "the untrained model stayed in C3-C7 anyway"
    assert parse_instruments("satb", 19) == [
        ("Alto", 19, (53, 74)),
        ("Tenor", 19, (48, 69)),
        ("Bass", 19, (36, 62)),
    ]
    assert parse_instruments(["Piano", " Choir ", "Lead=81"], 0) == [
        ("Piano", 0, None),
        ("Choir", 52, (40, 81)),
        ("Lead", 81, (48, 96)),
    ]
    assert parse_instruments("Tuba=58,Cello=42,Keys=4,Kit=-1", 0) == [
        ("Tuba", 58, (28, 65)),
        ("Cello", 42, (36, 76)),
        ("Keys", 4, None),  # pianos keep the whole range
        ("Kit", -1, None),
    ]
    with pytest.raises(ConditioningError, match="unknown instrument 'kazoo'; known: satb, bass, drums"):
        tiny_model.continue_midi(prompt, bars=1, instruments="bass,kazoo")
    for bad in ("Lead=200", "Lead=x", "=5", ""):
        with pytest.raises(ConditioningError):
            parse_instruments(bad, 0)
    assert set(PARTS) >= {"satb", "bass", "drums", "piano"}


# ---- infill ----------------------------------------------------------------------------------
def test_infill_rewrites_only_the_span_and_tracks_asked(tiny_model, jsb_test_files):
    score = first_bars(load_score(jsb_test_files[7]), 8)
    out = tiny_model.infill(score, (3, 5), "alto,BASS", seed=0, style="bach")
    assert layout(out) == layout(score)
    assert [(t.time, t.mspq) for t in out.tempos] == [(t.time, t.mspq) for t in score.tempos]
    grid = bar_grid(score)
    start, stop = int(grid.lines[2]), int(grid.lines[5])

    def outside(notes):
        return [n for n in notes if not (n[0] in (1, 3) and start <= n[1] < stop)]

    assert outside(notes_of(out)) == outside(notes_of(score))  # soprano and tenor inside the span too
    new = [n for n in notes_of(out, tracks=(1, 3)) if start <= n[1] < stop]
    assert {n[0] for n in new} == {1, 3} and new != [
        n for n in notes_of(score, (1, 3)) if start <= n[1] < stop
    ]
    assert all(on_grid(t, start, 480) for _, t, _, _, _ in new)
    assert bar_grid(out).bars == 8


def test_infill_reads_the_music_on_both_sides(tiny_model, jsb_test_files, monkeypatch):
    """MMM bar-fill: the window holds the bars before and after the slot as they are, the slot as
    ``Fill``, and the fill is written after the last bar."""
    score = first_bars(load_score(jsb_test_files[7]), 8)
    vocab = tiny_model.vocab
    piece = piece_from_score(score)
    contexts = spy_on_contexts(monkeypatch)
    out = tiny_model.infill(score, (5, 5), "Alto", seed=0)
    assert len(contexts) == 1 and contexts[0].count(vocab["Fill"]) == 1
    previous = ((4, 4), tempo_bin(float(piece.tempos[0])))
    for bar in (3, 5):  # the bars right before and after bar 5
        assert contains(contexts[0], bar_ids(vocab, piece, bar, piece.bar_notes(bar), previous)), bar
    assert contexts[0].index(vocab["Fill"]) < len(contexts[0]) - len(
        bar_ids(vocab, piece, 7, piece.bar_notes(7), previous)
    )
    grid = bar_grid(score)
    start, stop = int(grid.lines[4]), int(grid.lines[5])
    assert [n for n in notes_of(out) if not (n[0] == 1 and start <= n[1] < stop)] == [
        n for n in notes_of(score) if not (n[0] == 1 and start <= n[1] < stop)
    ]


def test_every_slot_is_finished_even_when_a_window_fills_up(tiny_model, jsb_test_files, monkeypatch):
    melody = first_bars(load_score(jsb_test_files[8]), 4)
    del melody.tracks[1:]
    runs = []
    real = decode.Decoder.run

    def run(self, state, stop, limit, bias=None):
        result = real(self, state, stop, limit, bias)
        runs.append(result[2])
        return result

    monkeypatch.setattr(decode.Decoder, "run", run)
    tiny_model.accompany(melody, "satb", seed=0)
    # Every one of the 3 x 4 slots ends with its FillEnd (a slot cut off by a full context is
    # written again in the next window, so unfinished runs may precede its finished one).
    assert runs.count(True) == 12


@pytest.mark.parametrize("real_prompt", ["jig"], indirect=True)
def test_infill_all_tracks_of_a_six_eight_bar(tiny_model, real_prompt):
    score = load_score(real_prompt)
    grid = bar_grid(score)
    out = tiny_model.infill(real_prompt, (4, 4), seed=2)
    start, stop = int(grid.lines[3]), int(grid.lines[4])
    assert [n for n in notes_of(out) if not start <= n[1] < stop] == [
        n for n in notes_of(score) if not start <= n[1] < stop
    ]
    assert any(start <= n[1] < stop for n in notes_of(out))
    assert bar_grid(out).meters == grid.meters


def test_infill_a_drum_track_of_an_mma_groove(tiny_model, mma_dir):
    path = mma_dir / "train" / "mma_50sRock.mid"
    score = load_score(path)
    out = tiny_model.infill(path, (2, 3), "Drum", seed=0)
    grid = bar_grid(score)
    start, stop = int(grid.lines[1]), int(grid.lines[3])
    same = [n for n in notes_of(score) if not (n[0] == 0 and start <= n[1] < stop)]
    assert [n for n in notes_of(out) if not (n[0] == 0 and start <= n[1] < stop)] == same
    drums = [n for n in out.tracks[0].notes if start <= n.time < stop]
    assert drums and out.tracks[0].is_drum


def test_infill_keeps_the_parts_that_play_on_both_sides_playing(tiny_model, mma_dir):
    """An untrained model rests often; with keep_playing (the default) every track that plays in
    the bars on both sides of the span plays in each bar of it, drums included."""
    path = mma_dir / "train" / "mma_50sRock.mid"
    score = load_score(path)
    grid = bar_grid(score)
    around = {
        i
        for i, t in enumerate(score.tracks)
        if all(any(grid.lines[b] <= n.time < grid.lines[b + 1] for n in t.notes) for b in (1, 5))
    }
    assert around and any(score.tracks[i].is_drum for i in around)
    for seed in (0, 1):
        out = tiny_model.infill(path, (3, 5), seed=seed)
        for i in around:
            for bar in (2, 3, 4):
                notes = [n for n in out.tracks[i].notes if grid.lines[bar] <= n.time < grid.lines[bar + 1]]
                assert notes, f"seed {seed}: {out.tracks[i].name} rests in bar {bar + 1}"
    piece = piece_from_score(score)
    assert _playing_around(piece, 1, 2) == set(piece.bar_notes(2)[:, 0].tolist())  # the side there is
    assert _playing_around(piece, 1, piece.bars) == set()


def test_infill_of_dense_music_writes_every_slot(tiny_model, freedoom_piece):
    """Freedoom's D_ADRIAN has 16 tracks; a bar takes 150-200 tokens, so two bars exceed the tiny
    model's 256-token context. Infilling the drums of bars 43-44 must still write both bars."""
    path = freedoom_piece("freedoom2_D_ADRIAN")
    grid = bar_grid(load_score(path))
    out = tiny_model.infill(path, (43, 44), "Drums", seed=0)
    drums = out.tracks[[t.name for t in out.tracks].index("Drums")]
    for bar in (42, 43):
        assert [n for n in drums.notes if grid.lines[bar] <= n.time < grid.lines[bar + 1]], (
            f"bar {bar + 1} is empty"
        )


# ---- accompany -------------------------------------------------------------------------------
def test_accompany_writes_satb_under_a_melody(tiny_model, jsb_test_files):
    melody = first_bars(load_score(jsb_test_files[8]), 4)
    del melody.tracks[1:]
    out = tiny_model.accompany(melody, "satb", seed=0, style="bach")
    assert layout(out) == [(name, 19, False) for name in SATB]  # the melody's program
    assert notes_of(out, tracks=(0,)) == notes_of(melody)
    grid = bar_grid(melody)
    covered = set()
    for index in (1, 2, 3):
        bars = {int(grid.bar_of(np.asarray([n.time]))[0]) for n in out.tracks[index].notes}
        assert len(bars) >= 2, f"{SATB[index]} is nearly silent"
        covered |= bars
        assert max(n.end for n in out.tracks[index].notes) <= grid.lines[-1]
    assert covered == {0, 1, 2, 3}  # the new parts span the piece
    assert bar_grid(out).bars == 4


def test_accompany_adds_bass_and_drums(tiny_model, jsb_test_files):
    score = first_bars(load_score(jsb_test_files[9]), 3)
    out = tiny_model.accompany(score, "bass,drums", seed=0)
    assert layout(out) == layout(score) + [("Bass", 33, False), ("Drums", 0, True)]
    assert notes_of(out, tracks=range(4)) == notes_of(score)
    assert all(len(out.tracks[i].notes) for i in (4, 5))


# ---- errors ------------------------------------------------------------------------------------
def _drums_only(tmp_path):
    score = Score(480)
    kit = Track(name="kit", program=0, is_drum=True)
    kit.notes.extend([Note(t, 120, 36, 100) for t in range(0, 3840, 480)])
    score.tracks.append(kit)
    path = tmp_path / "drums_only.mid"
    score.dump_midi(str(path))
    return path


def _out_of_range(tmp_path):
    score = Score(480)
    low = Track(name="rumble", program=0)
    low.notes.extend([Note(t, 480, 12, 90) for t in range(0, 3840, 480)])
    score.tracks.append(low)
    path = tmp_path / "rumble.mid"
    score.dump_midi(str(path))
    return path


def _silent(tmp_path):
    path = tmp_path / "silent.mid"
    score = Score(480)
    score.tracks.append(Track(name="empty", program=0))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    score.dump_midi(str(path))
    return path


def _seven_sixteen(tmp_path, chorale):
    """The chorale in 7/16: a bar of 21 positions no bars of the token meters fill."""
    score = load_score(chorale)
    score.time_signatures = [TimeSignature(0, 7, 16)]
    path = tmp_path / "seven_sixteen.mid"
    score.dump_midi(str(path))
    return path


def _seventeen_tracks(tmp_path, freedoom_piece, chorale):
    score = load_score(freedoom_piece("freedoom2_D_ADRIAN"))
    score.tracks.append(load_score(chorale).tracks[3].copy())
    path = tmp_path / "seventeen.mid"
    score.dump_midi(str(path))
    return path


def test_api_errors(tiny_model, jsb_test_files, freedoom_piece, tmp_path):
    chorale = jsb_test_files[0]
    with pytest.raises(
        ConditioningError, match="unknown style 'mozart': this model knows the styles: bach, jazz"
    ):
        tiny_model.continue_midi(chorale, bars=1, style="mozart")
    for bars in [(0, 2), (5, 3), (14, 16), (16, 16)]:  # the chorale has 15 bars
        with pytest.raises(ConfigError, match=rf"infill span {bars[0]}-{bars[1]} .* has bars 1-15"):
            tiny_model.infill(chorale, bars)
    with pytest.raises(ConfigError, match="has no track 'Banjo'; its tracks: Soprano, Alto, Tenor, Bass"):
        tiny_model.infill(chorale, (2, 3), "Alto,Banjo")
    with pytest.raises(TokenizerError, match="has 16 tracks; adding 1 would exceed the 16"):
        tiny_model.accompany(freedoom_piece("freedoom2_D_ADRIAN"), "bass")
    with pytest.raises(TokenizerError, match="seventeen.mid has 17 tracks with notes"):
        tiny_model.continue_midi(_seventeen_tracks(tmp_path, freedoom_piece, chorale), bars=1)
    with pytest.raises(MidiError, match="drums_only.mid holds only drum notes"):
        tiny_model.continue_midi(_drums_only(tmp_path), bars=1)
    with pytest.raises(MidiError, match=r"rumble.mid has no notes in the piano range"):
        tiny_model.accompany(_out_of_range(tmp_path), "bass")
    with pytest.raises(MidiError, match="silent.mid has no notes"):
        tiny_model.infill(_silent(tmp_path), (1, 1))
    with pytest.raises(TokenizerError, match=r"seven_sixteen.mid: time signature 7/16 .*supported: 1/4"):
        tiny_model.continue_midi(_seven_sixteen(tmp_path, chorale), bars=1)
    with pytest.raises(ConfigError, match="bars must be >= 1"):
        tiny_model.continue_midi(chorale, bars=0)
    with pytest.raises(ConfigError, match="prompt_bars must be >= 1"):
        tiny_model.continue_midi(chorale, bars=1, prompt_bars=0)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        tiny_model.continue_midi(chorale, bars=1, temperature=0)


def test_a_piece_with_10_4_bars_is_continued_and_infilled_on_its_own_grid(tiny_model, freedoom_piece):
    """Freedoom's D_ULTIMA goes 5/4, 5/4, 7/4, 3/4, ... 10/4 (bar 9): the model writes a 10/4 bar as two
    of 5/4; the output keeps the score's meters, bar lines and notes outside the edit."""
    path = freedoom_piece("freedoom2_D_ULTIMA")
    score = load_score(path)
    out = tiny_model.continue_midi(path, bars=1, prompt_bars=2, seed=0)
    assert bar_grid(out).meters == [(5, 4)] * 3 and [(s.time, s.numerator) for s in out.time_signatures] == [
        (0, 5)
    ]
    prompt = first_bars(score, 9)  # ends on the 10/4 bar: the new bars are 10/4 too
    out = tiny_model.continue_midi(prompt, bars=2, seed=0)
    grid, real = bar_grid(out), bar_grid(prompt)
    assert grid.meters == real.meters + [(10, 4)] * 2 and list(grid.lines[: real.bars + 1]) == list(
        real.lines
    )
    assert [n for n in notes_of(out) if n[1] < real.lines[-1]] == notes_of(prompt)
    for bar in (real.bars, real.bars + 1):  # both halves of each new 10/4 bar are written
        for half in range(2):
            start = grid.lines[bar] + half * (grid.lines[bar + 1] - grid.lines[bar]) // 2
            assert any(start <= t < start + 5 * out.ticks_per_quarter for _, t, _, _, _ in notes_of(out))
    cut = first_bars(score, 12)
    filled = tiny_model.infill(cut, (9, 10), seed=0)  # the 10/4 bar and the 7/4 after it
    lines = bar_grid(cut).lines
    outside = [n for n in notes_of(cut) if not lines[8] <= n[1] < lines[10]]
    assert [n for n in notes_of(filled) if not lines[8] <= n[1] < lines[10]] == outside
    assert any(lines[8] + 5 * cut.ticks_per_quarter <= n[1] < lines[9] for n in notes_of(filled))
    assert bar_grid(filled).meters == bar_grid(cut).meters


def test_an_eleven_eight_chorale_continues_in_six_plus_five(tiny_model, jsb_test_files, tmp_path):
    """A chorale written in 11/8 (bars of 6/8 + 5/8 for the model) continued by 2 bars: its meter and
    bar lines, new notes in both parts of every new bar."""
    path = _retimed(tmp_path, jsb_test_files[1], 11, 8)
    prompt = first_bars(load_score(path), 4)
    out = tiny_model.continue_midi(prompt, bars=2, seed=0)
    grid = bar_grid(out)
    assert grid.meters == [(11, 8)] * 6 and [(s.numerator, s.denominator) for s in out.time_signatures] == [
        (11, 8)
    ]
    tpq = out.ticks_per_quarter
    for bar in (4, 5):
        six_eight = grid.lines[bar] + 3 * tpq
        assert any(grid.lines[bar] <= t < six_eight for _, t, _, _, _ in notes_of(out))
        assert any(six_eight <= t < grid.lines[bar + 1] for _, t, _, _, _ in notes_of(out))


def test_prompt_bars_follow_the_scores_own_bar_lines(freedoom_piece):
    score = load_score(freedoom_piece("freedoom2_D_ULTIMA"))  # 5/4, 5/4, 7/4, 3/4, ...
    lines = bar_grid(score).lines
    prompt = first_bars(score, 3)
    assert prompt.end() == lines[3] == 8160
    assert notes_of(prompt) == [n for n in notes_of(score) if n[1] < lines[3]]


# ---- the command line --------------------------------------------------------------------------
def test_cli_generate_infill_accompany_write_midi_and_png(tiny_checkpoint, jsb_test_files, tmp_path, capsys):
    chorale = tmp_path / "chorale.mid"
    first_bars(load_score(jsb_test_files[10]), 5).dump_midi(str(chorale))
    common = ["--checkpoint", str(tiny_checkpoint), "--seed", "3", "--style", "jazz"]
    runs = {
        "generate": (["generate", "--prompt", chorale, "--prompt-bars", "2", "--bars", "2"], 4),
        "infill": (["infill", chorale, "--bars", "2-3", "--tracks", "Tenor"], 5),
        "accompany": (["accompany", chorale, "--add", "bass,drums", "--top-p", "0.9"], 5),
    }
    for name, (argv, bars) in runs.items():
        out, png = tmp_path / f"{name}.mid", tmp_path / f"{name}.png"
        drawn = ["--png", str(png)] if name == "generate" else []  # one piano roll: matplotlib is slow
        assert main([*map(str, argv), *common, "--out", str(out), *drawn]) == 0, name
        printed = capsys.readouterr().out
        assert str(out) in printed and (str(png) in printed) == bool(drawn)
        assert not drawn or png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        score = load_score(out)
        grid = bar_grid(score)
        assert grid.bars == bars, name
        assert max(t.end() for t in score.tracks if len(t.notes)) <= grid.lines[-1]  # saved on the bar line
    assert [t.name for t in load_score(tmp_path / "accompany.mid").tracks] == SATB + ["Bass", "Drums"]
    before = load_score(chorale)
    infilled = load_score(tmp_path / "infill.mid")
    assert notes_of(infilled, tracks=(0, 1, 3)) == notes_of(before, tracks=(0, 1, 3))


def test_cli_bad_inputs_give_one_line_errors_and_no_output(
    tiny_checkpoint, jsb_test_files, freedoom_piece, tmp_path, capsys
):
    chorale = str(jsb_test_files[0])
    ckpt = ["--checkpoint", str(tiny_checkpoint)]
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x04\x01\xe0MTrk\xff\xff\xff\xffjunk")
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_checkpoint, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    no_tokenizer = tmp_path / "no_tokenizer"
    shutil.copytree(tiny_checkpoint, no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    old_format = tmp_path / "old_format"
    shutil.copytree(tiny_checkpoint, old_format)
    (old_format / "tokenizer.json").write_text('{"config": {"pitch_range": [21, 109]}}')
    cases = [
        (["generate", "--prompt", chorale, "--style", "mozart", *ckpt], "unknown style 'mozart'"),
        (["generate", "--prompt", chorale, "--instruments", "kazoo", *ckpt], "unknown instrument 'kazoo'"),
        (["infill", chorale, "--bars", "30-31", *ckpt], "infill span 30-31 is not inside"),
        (["infill", chorale, "--bars", "5-3", *ckpt], "infill span 5-3"),
        (["infill", chorale, "--bars", "0", *ckpt], "infill span 0-0"),
        (["infill", chorale, "--bars", "two-three", *ckpt], "--bars must be FIRST-LAST"),
        (["infill", chorale, "--bars", "2-3", "--tracks", "Banjo", *ckpt], "no track 'Banjo'"),
        (["accompany", str(freedoom_piece("freedoom2_D_ADRIAN")), "--add", "bass", *ckpt], "exceed the 16"),
        (
            ["generate", "--prompt", str(_seventeen_tracks(tmp_path, freedoom_piece, chorale)), *ckpt],
            "seventeen.mid has 17 tracks",
        ),
        (["generate", "--prompt", str(_drums_only(tmp_path)), *ckpt], "only drum notes"),
        (["accompany", str(_silent(tmp_path)), "--add", "bass", *ckpt], "silent.mid has no notes"),
        (
            ["generate", "--prompt", str(_out_of_range(tmp_path)), *ckpt],
            "rumble.mid has no notes in the piano",
        ),
        (["generate", "--prompt", str(empty), *ckpt], "MIDI file is empty"),
        (["generate", "--prompt", str(corrupt), *ckpt], "corrupt.mid is not a readable MIDI file"),
        (["generate", "--prompt", str(tmp_path / "missing.mid"), *ckpt], "MIDI file not found"),
        (["generate", "--prompt", str(_seven_sixteen(tmp_path, chorale)), *ckpt], "7/16"),
        (
            ["generate", "--prompt", chorale, "--checkpoint", str(tmp_path / "nope")],
            "checkpoint folder not found",
        ),
        (["generate", "--prompt", chorale, "--checkpoint", str(truncated)], "truncated or corrupt"),
        (["infill", chorale, "--bars", "2", "--checkpoint", str(no_tokenizer)], "tokenizer file not found"),
        (
            ["accompany", chorale, "--add", "bass", "--checkpoint", str(old_format)],
            "is not a notewave-multitrack",
        ),
        (["generate", "--prompt", chorale, "--temperature", "0", *ckpt], "temperature must be > 0"),
    ]
    for index, (argv, message) in enumerate(cases):
        out = tmp_path / f"out{index}.mid"
        png = tmp_path / f"out{index}.png"
        assert main([*argv, "--out", str(out), "--png", str(png)]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("notewave: error:") and err.count("\n") == 1, err
        assert message in err and "Traceback" not in err, (message, err)
        assert not out.exists() and not png.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_composer_save_ends_on_the_bar_line(tiny_model, freedoom_piece, tmp_path):
    """Freedoom's D_E2M9 (6/8, 1024 ticks per quarter) releases its last notes 8 ticks after its last
    bar line; an infill of its last bar, saved through Composer.save, ends exactly on that line."""
    path = freedoom_piece("freedoom1_D_E2M9")
    score = load_score(path)
    grid = bar_grid(score)
    assert score.end() == grid.lines[-1] + 8 and grid.meters[-1] == (6, 8)
    out = tiny_model.infill(path, (grid.bars, grid.bars), "Electric Bass (finger)", seed=0)
    saved = load_score(Composer.save(out, tmp_path / "saved.mid"))
    assert bar_grid(saved).bars == grid.bars and saved.end() == grid.lines[-1]
    assert layout(saved) == layout(score) and saved.ticks_per_quarter == 1024
    last = int(grid.lines[-2])

    def onsets(s):
        return sorted(
            (i, n.time, n.pitch) for i, t in enumerate(s.tracks) for n in t.notes if i != 2 or n.time < last
        )

    assert onsets(saved) == onsets(score)


def resting_composer(vocab) -> Composer:
    """A tiny MidiLM whose weights make every track rest: whatever it reads, the ids that end a
    track's bar or fill (``Track_i``, ``Bar``, ``EOS``, ``FillEnd``) get a logit of 20, the rest 0."""
    from notewave.symbolic.model import MidiLM, config_for

    model = MidiLM(config_for("tiny", vocab)).eval()
    ends = [
        vocab.bar_id,
        vocab.eos_id,
        vocab["FillEnd"],
        *range(vocab.spans["Track"].start, vocab.spans["Track"].stop),
    ]
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.head.weight.zero_()
        model.head.weight[ends, 0] = 20.0
    return Composer(model, vocab)


def test_rests_at_the_end_of_an_edit_are_saved(tiny_model, jsb_test_files, tmp_path):
    resting = resting_composer(tiny_model.vocab)
    prompt = first_bars(load_score(jsb_test_files[0]), 2)
    continued = resting.continue_midi(prompt, bars=2, seed=0, keep_playing=False)
    assert notes_of(continued) == notes_of(prompt)  # the model rested, as its weights say
    saved = load_score(Composer.save(continued, tmp_path / "continued.mid"))
    infilled = resting.infill(jsb_test_files[0], (14, 15), seed=0)
    saved_infill = load_score(Composer.save(infilled, tmp_path / "infilled.mid"))
    assert (bar_grid(saved).bars, bar_grid(saved_infill).bars) == (4, 15)


# ---- the shipped composer --------------------------------------------------------------------
def _style(composer):
    return "bach" if "bach" in composer.styles else None


def test_composer_continues_a_held_out_chorale_in_every_voice(composer_model, jsb_test_files):
    prompt_bars, bars = 4, 4
    for path in jsb_test_files[:3]:
        prompt = first_bars(load_score(path), prompt_bars)
        out = composer_model.continue_midi(
            path, bars=bars, prompt_bars=prompt_bars, seed=0, style=_style(composer_model)
        )
        grid = bar_grid(prompt).extended(bars)
        assert bar_grid(out).bars == prompt_bars + bars
        for bar in range(prompt_bars, prompt_bars + bars):
            for voice in range(4):
                notes = [
                    n for n in out.tracks[voice].notes if grid.lines[bar] <= n.time < grid.lines[bar + 1]
                ]
                assert notes, f"{path.name}: bar {bar + 1} of the {SATB[voice]} is empty"
        onsets = [n.time for tr in out.tracks for n in tr.notes]
        assert sum(t % 120 == 0 for t in onsets) >= 0.95 * len(onsets)  # Bach's 16th-note grid


def test_composer_infills_and_accompanies_chorales(composer_model, jsb_test_files):
    path = jsb_test_files[11]
    score = load_score(path)
    grid = bar_grid(score)
    out = composer_model.infill(path, (5, 6), "Alto,Tenor", seed=0, style=_style(composer_model))
    for voice in (1, 2):
        for bar in (4, 5):
            assert [n for n in out.tracks[voice].notes if grid.lines[bar] <= n.time < grid.lines[bar + 1]]
    melody = score.copy()
    del melody.tracks[1:]
    satb = composer_model.accompany(melody, "satb", seed=0, style=_style(composer_model))
    sung = {int(grid.bar_of(np.asarray([n.time]))[0]) for n in melody.tracks[0].notes}
    for voice in (1, 2, 3):  # every new voice sings in every bar the melody does
        filled = {int(grid.bar_of(np.asarray([n.time]))[0]) for n in satb.tracks[voice].notes}
        assert filled >= sung, f"{SATB[voice]} rests in bars {sorted(sung - filled)}"


def test_composer_keeps_the_voices_in_register_order(composer_model, jsb_test_files):
    path = jsb_test_files[0]
    start = bar_grid(first_bars(load_score(path), 4)).lines[-1]
    crossed = []  # a continuation is sampled: the voices may cross for a while; they must not as a rule
    for seed in range(4):
        out = composer_model.continue_midi(
            path, bars=4, prompt_bars=4, seed=seed, style=_style(composer_model)
        )
        means = [np.mean([n.pitch for n in t.notes if n.time >= start]) for t in out.tracks]
        if means != sorted(means, reverse=True):
            crossed.append((seed, means))
    assert len(crossed) <= 1, f"continuation: voices out of register order in {crossed}"
    melody = load_score(jsb_test_files[11]).copy()
    del melody.tracks[1:]
    satb = composer_model.accompany(melody, "satb", seed=0, style=_style(composer_model))
    means = [np.mean([n.pitch for n in t.notes]) for t in satb.tracks]
    assert means == sorted(means, reverse=True), f"accompaniment: voices out of register order {means}"
    for track, (name, _, (low, high)) in zip(satb.tracks[1:], PARTS["satb"], strict=True):
        pitches = [n.pitch for n in track.notes]
        assert track.name == name and pitches and low <= min(pitches) and max(pitches) <= high

"""Quality measures of a composer's edits (notewave.symbolic.quality*) on real MIDI.

Real pieces: the shipped JSB test chorales, Freedoom's game music and MMA grooves (drums;
skipped when the ``freedoom`` / ``mma`` packages are missing) and music21's BWV 269 (3/4).
A piece's own bars 9-12 (indices 8..11) after its bars 5-8 stand for a perfect continuation.
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
from symusic import Score

from notewave.core.midi import load_score
from notewave.errors import ConfigError, MidiError
from notewave.symbolic.quality import (
    ContinuationQuality,
    beat_length,
    continuation_quality,
    piece_bars,
    pitch_class_histogram,
    span_grid,
)
from notewave.symbolic.quality_accompaniment import (
    accompaniment_quality,
    chorale_consonance,
    consonance_counts,
)
from notewave.symbolic.quality_report import check_targets, render_table, render_targets, summarise
from notewave.symbolic.sources import FREEDOOM_WADS
from notewave.symbolic.stats import KK_MAJOR, KK_MINOR, PITCH_NAMES, estimate_key

FIRST, LAST = 8, 12  # the held-out bars 9-12; the context is bars 5-8
LOWER_VOICES = ("Alto", "Tenor", "Bass")


def span_ticks(score: Score, first: int = FIRST, last: int = LAST) -> tuple[int, int]:
    lines = span_grid(score, last).lines
    return int(lines[first]), int(lines[last])


def edited(score: Score, change, first: int = FIRST, last: int = LAST, tracks=None) -> Score:
    """A copy of ``score`` whose notes with onset in bars ``[first, last)`` (of ``tracks``, by
    name; all by default) are passed through ``change`` (None deletes them)."""
    out = score.copy()
    start, end = span_ticks(out, first, last)
    for track in out.tracks:
        if tracks is not None and track.name not in tracks:
            continue
        if change is None:
            track.notes.filter(lambda n: not start <= n.time < end, inplace=True)
        else:
            for note in track.notes:
                if start <= note.time < end:
                    change(note, track)
    return out


def prompt_of(score: Score, bars: int = FIRST) -> Score:
    return score.copy().clip(0, span_ticks(score, 0, bars)[1], clip_end=True)


@pytest.fixture(scope="module")
def chorales(jsb_test_files) -> list[tuple[Path, Score]]:
    """The test chorales whose bars 9-12 lie inside the piece (one more bar after them)."""
    scores = [(path, load_score(path)) for path in jsb_test_files]
    return [(path, score) for path, score in scores if piece_bars(score) > LAST]


@pytest.fixture(scope="module")
def real_continuations(chorales) -> list[ContinuationQuality]:
    return [
        continuation_quality(s, FIRST, LAST, prompt=prompt_of(s), reference=s, name=p.name, style="bach")
        for p, s in chorales
    ]


@pytest.fixture(scope="module")
def drum_pieces(tmp_path_factory) -> list[Score]:
    """Freedoom pieces (bars 9-12) and MMA grooves with drums, as many as are installed."""
    pieces = []
    if all(path.is_file() for path in FREEDOOM_WADS):
        from notewave.symbolic.sources import export_freedoom

        out = tmp_path_factory.mktemp("freedoom")
        export_freedoom(out, progress=False)
        pieces += [load_score(p) for p in sorted(out.glob("*/*.mid"))[::4]]  # 17 of the 66, for time
    if shutil.which("mma"):
        from notewave.symbolic.sources import export_mma

        out = tmp_path_factory.mktemp("mma")
        export_mma(out, limit=3, examples=False, progress=False)
        pieces += [load_score(p) for p in sorted(out.glob("*/*.mid"))]
    if not pieces:
        pytest.skip("neither freedoom nor mma is installed (apt-get install freedoom mma)")
    return pieces


def drum_span(score: Score) -> tuple[int, int] | None:
    """Bars 9-12 of a long piece, bars 5-8 of an 8-bar MMA groove, None for a shorter piece."""
    bars = piece_bars(score)
    return (FIRST, LAST) if bars > LAST else (4, 8) if bars >= 8 else None


def test_real_continuations_match_their_context(real_continuations):
    assert len(real_continuations) >= 50
    density = [q.density_ratio for q in real_continuations]
    assert 0.85 <= statistics.median(density) <= 1.15
    assert min(density) > 0.4 and max(density) < 2.0
    assert statistics.mean(q.key_cosine for q in real_continuations) > 0.85
    assert statistics.median(q.key_cosine for q in real_continuations) > 0.9
    for q in real_continuations:
        assert q.tracks_kept and q.changed_tracks == ()
        assert q.drum_bar_share is None and q.drums_continued is None  # chorales have no drums
        assert q.reference_entropy == q.entropy and q.reference_polyphony == q.polyphony
        assert 1.5 < q.entropy < 3.6 and 2.0 < q.polyphony <= 4.0  # four voices, bits
        assert [t.label for t in q.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
        assert q.silent_tracks == ()
    rows = summarise(real_continuations)
    assert [r.style for r in rows] == ["bach"] and rows[0].pieces == len(real_continuations)
    assert rows[0].entropy_delta == 0 and rows[0].polyphony_delta == 0
    assert rows[0].tracks_kept == 1 and rows[0].drums_continued is None
    # Keys from 4 bars disagree often (modulations, relative keys): reported, not a target.
    assert 0.2 < rows[0].key_agreement < 0.9


def test_emptied_continuation_scores_zero(chorales):
    path, score = chorales[0]
    q = continuation_quality(edited(score, None), FIRST, LAST, prompt=prompt_of(score), reference=score)
    assert q.density_ratio == 0 and q.new_notes_per_bar == 0
    assert q.empty_bars == 4 and q.empty_bar_share == 1 and q.empty_where_prompt_had_none
    assert q.key_cosine == 0.0 and q.new_key is None and q.keys_agree is None
    assert q.silent_tracks == ("Soprano", "Alto", "Tenor", "Bass")
    assert q.reference_entropy > 1.5 and q.entropy != q.entropy  # NaN without new notes


def test_tritone_transposition_lowers_key_cosine(chorales, real_continuations):
    def tritone(note, track):
        note.pitch += 6

    moved = [continuation_quality(edited(s, tritone), FIRST, LAST) for _, s in chorales]
    drops = [r.key_cosine - m.key_cosine for r, m in zip(real_continuations, moved)]
    assert sum(d > 0 for d in drops) >= 0.9 * len(drops)
    assert statistics.mean(drops) > 0.3
    assert statistics.mean(m.key_cosine for m in moved) < 0.8
    # The density does not change with the pitch.
    assert [m.density_ratio for m in moved] == [r.density_ratio for r in real_continuations]


def test_an_infill_is_measured_against_the_music_on_both_sides(chorales):
    """Bars 9-12 measured as an infill (``context_after=4``): the context's notes per bar count
    the 4 bars before and the 4 after; the bars after moved by a tritone lower the two-sided key
    cosine and leave the one-sided one as it was."""
    long = [s for _, s in chorales if piece_bars(s) >= LAST + 4]
    assert len(long) >= 20
    drops = []
    for score in long:
        one = continuation_quality(score, FIRST, LAST)
        both = continuation_quality(score, FIRST, LAST, context_after=4)
        assert (one.context_after_bars, both.context_after_bars) == (0, 4)
        lines = span_grid(score, LAST + 4).lines
        onsets = [n.time for t in score.tracks for n in t.notes]
        before = sum(lines[FIRST - 4] <= t < lines[FIRST] for t in onsets)
        after = sum(lines[LAST] <= t < lines[LAST + 4] for t in onsets)
        assert both.context_notes_per_bar == pytest.approx((before + after) / 8)
        assert one.context_notes_per_bar == pytest.approx(before / 4)
        assert both.new_notes_per_bar == one.new_notes_per_bar

        def tritone(note, track):
            note.pitch += 6

        moved = edited(score, tritone, LAST, LAST + 4)
        assert continuation_quality(moved, FIRST, LAST).key_cosine == pytest.approx(one.key_cosine)
        drops.append(both.key_cosine - continuation_quality(moved, FIRST, LAST, context_after=4).key_cosine)
    assert sum(d > 0 for d in drops) >= 0.9 * len(drops) and statistics.mean(drops) > 0.1
    # at the end of a piece the context has only the bars there are
    score = long[0]
    end = piece_bars(score)
    assert continuation_quality(score, end - 4, end, context_after=4).context_after_bars == 0
    assert continuation_quality(score, end - 6, end - 2, context_after=4).context_after_bars == 2
    with pytest.raises(ConfigError, match="context_after must be >= 0"):
        continuation_quality(score, FIRST, LAST, context_after=-1)


def test_notes_held_four_times_as_long_shift_the_lengths_by_two_octaves(chorales, real_continuations):
    """Bach's own bars 9-12 keep each voice's note lengths (mean shift under half an octave);
    the same bars with every note four times as long are two octaves off, less what the real
    bars already differed by, in every chorale."""

    def longer(note, track):
        note.duration *= 4

    real = [q.length_shift for q in real_continuations]
    assert statistics.mean(real) < 0.5 and statistics.median(real) < 0.5
    for (_, score), shift in zip(chorales, real):
        moved = continuation_quality(edited(score, longer), FIRST, LAST).length_shift
        assert 2 - shift - 1e-9 <= moved <= 2 + shift + 1e-9
    assert summarise(real_continuations)[0].length_shift == pytest.approx(statistics.mean(real))


def test_a_voice_moved_out_of_its_register_is_measured(chorales, real_continuations):
    """Bach's own bars 9-12 keep (nearly) every voice in its register; the bass moved up two
    octaves in them takes its notes out (about a quarter of the span's notes)."""
    shares = [r.in_register for r in real_continuations]
    assert min(shares) >= 0.95 and statistics.mean(shares) > 0.99

    def two_octaves(note, track):
        note.pitch += 24

    moved = [continuation_quality(edited(s, two_octaves, tracks={"Bass"}), FIRST, LAST) for _, s in chorales]
    assert all(m.in_register < 0.85 for m in moved)
    assert 0.65 < statistics.mean(m.in_register for m in moved) < 0.85
    assert summarise(moved)[0].in_register == pytest.approx(statistics.mean(m.in_register for m in moved))
    assert "in register" in render_table(summarise(moved))


def test_silent_track_and_changed_track_are_reported(chorales):
    _, score = chorales[0]
    q = continuation_quality(edited(score, None, tracks={"Tenor"}), FIRST, LAST)
    assert q.silent_tracks == ("Tenor",)
    tenor = {t.label: t for t in q.tracks}["Tenor"]
    assert tenor.density_ratio == 0 and tenor.active_at_prompt_end
    assert 0 < q.density_ratio < continuation_quality(score, FIRST, LAST).density_ratio
    output = score.copy()
    output.tracks[3].program = 33  # the bass now plays an electric bass
    q = continuation_quality(output, FIRST, LAST, prompt=prompt_of(score))
    assert q.tracks_kept is False and q.changed_tracks == ("Bass",)


def test_real_drums_continue_and_deleted_drums_do_not(drum_pieces):
    with_drums = 0
    pieces = [(score, drum_span(score)) for score in drum_pieces if drum_span(score)]
    for score, (first, last) in pieces:
        q = continuation_quality(score, first, last)
        if not q.context_has_drums:
            continue
        with_drums += 1
        assert 0.3 < q.density_ratio < 6
        drumless = edited(score, None, first, last, tracks={t.name for t in score.tracks if t.is_drum})
        gone = continuation_quality(drumless, first, last)
        assert gone.drum_bar_share == 0 and gone.drums_continued is False
        assert {t.label for t in gone.tracks if t.is_drum} <= set(gone.silent_tracks)
        empty = continuation_quality(edited(score, None, first, last), first, last)
        assert empty.density_ratio == 0 and empty.empty_bar_share == 1 and empty.drums_continued is False
    assert with_drums >= 2
    results = [continuation_quality(score, *span) for score, span in pieces]
    drums = [q.drums_continued for q in results if q.drums_continued is not None]
    # Real pieces keep their drums going in (nearly) every case.
    assert sum(drums) >= 0.9 * len(drums)


def _drums_only_in(score: Score, keep_bars: set[int]) -> Score:
    """A copy of ``score`` whose drum notes start only in the bars ``keep_bars`` (0-based)."""
    out = score.copy()
    lines = [int(x) for x in span_grid(out, max(keep_bars | {LAST}) + 1).lines]
    keep = [(lines[b], lines[b + 1]) for b in keep_bars]
    for track in out.tracks:
        if track.is_drum:
            track.notes.filter(lambda n: any(a <= n.time < b for a, b in keep), inplace=True)
    return out


def test_drums_continue_as_often_as_around(drum_pieces):
    """A groove (drums in every context bar) must drum in every new bar; a part that plays every
    other bar around (a crash on bars 5 and 7) is continued when it plays every other new bar."""
    groove = next(
        (
            s
            for s in drum_pieces
            if piece_bars(s) >= LAST + 4
            and drum_span(s) == (FIRST, LAST)
            and continuation_quality(s, FIRST, LAST, context_after=4).context_drum_bar_share == 1.0
            and continuation_quality(s, FIRST, LAST).drum_bar_share == 1.0
        ),
        None,
    )
    if groove is None:
        pytest.skip("no installed piece drums in every bar 5-16 (Freedoom is not installed)")
    assert continuation_quality(groove, FIRST, LAST).drums_continued is True
    three = _drums_only_in(groove, set(range(FIRST)) | {8, 9, 10})
    assert continuation_quality(three, FIRST, LAST).drums_continued is False  # a groove stops for a bar
    sparse = _drums_only_in(groove, {4, 6, 8, 10})
    q = continuation_quality(sparse, FIRST, LAST)
    assert q.context_drum_bar_share == 0.5 and q.drum_bar_share == 0.5 and q.drums_continued is True
    once = continuation_quality(_drums_only_in(groove, {4, 6, 8}), FIRST, LAST)
    assert once.drum_bar_share == 0.25 and once.drums_continued is False
    # an infill's context is both sides: drums only after the span (bars 13-16) make half the context
    after = _drums_only_in(groove, {12, 13, 14, 15})
    around = continuation_quality(after, FIRST, LAST, context_after=4)
    assert around.context_drum_bar_share == 0.5 and around.drums_continued is False
    assert continuation_quality(after, FIRST, LAST).drums_continued is None  # before the span: none


def test_three_four_meter_of_a_real_chorale(tmp_path):
    music21 = pytest.importorskip("music21")
    work = music21.corpus.parse("bach/bwv269")  # 3/4, one-beat pickup, first section repeated
    assert work.recurse().getElementsByClass("TimeSignature")[0].ratioString == "3/4"
    work.write("midi", fp=str(tmp_path / "bwv269.mid"))
    score = load_score(tmp_path / "bwv269.mid")
    score.shift_time(2 * score.ticks_per_quarter, inplace=True)  # pad the pickup to a full bar
    for ts in score.time_signatures:
        ts.time = 0 if ts.time == 2 * score.ticks_per_quarter else ts.time
    # 84 quarters with the repeat written out, 2 of padding: 28 bars and a 2-beat one.
    assert piece_bars(score) == 29
    lines = span_grid(score, 29).lines
    assert set((lines[1:] - lines[:-1]).tolist()) == {3 * score.ticks_per_quarter}
    # On the 3/4 grid every bar after the padded pickup starts with a soprano note.
    soprano = {n.time for t in score.tracks if t.name == "Soprano" for n in t.notes}
    assert all(int(line) in soprano for line in lines[1:-1])
    q = continuation_quality(score, FIRST, LAST, reference=score)
    assert 0.6 < q.density_ratio < 1.6 and q.key_cosine > 0.8 and q.empty_bars == 0
    beats, consonant = consonance_counts(score, ("Soprano",), LOWER_VOICES)
    assert 60 <= beats <= 3 * 29 and consonant / beats > 0.6
    # The same notes read as 4/4 give fewer, longer bars.
    as_four = score.copy()
    for ts in as_four.time_signatures:
        ts.numerator = 4
    assert piece_bars(as_four) == 22
    assert (
        beat_length(480, (3, 4)) == 480
        and beat_length(480, (6, 8)) == 720
        and beat_length(480, (3, 8)) == 240
    )


def test_consonance_of_real_chorales_beats_shifted_voices(chorales):
    def semitone(note, track):
        note.pitch += 1

    shares = []
    for path, score in chorales[:10]:
        real = accompaniment_quality(score, ["Soprano"], LOWER_VOICES, name=path.name)
        shifted = edited(score, semitone, 0, piece_bars(score), tracks=set(LOWER_VOICES))
        worse = accompaniment_quality(shifted, ["Soprano"], LOWER_VOICES)
        assert real.beats >= 30 and real.beats == worse.beats
        assert real.consonance_share > worse.consonance_share + 0.3
        shares.append((real.consonance_share, worse.consonance_share))
    scores = [s for _, s in chorales]
    reference = chorale_consonance(scores)
    assert 0.7 < reference < 0.95
    assert statistics.mean(w for _, w in shares) < 0.4
    # Counting the fourth above the bass as dissonant lowers the share only a little.
    assert reference - 0.05 < chorale_consonance(scores, fourth_over_bass_dissonant=True) < reference


def test_targets_flag_failures(chorales, real_continuations):
    empties = [
        continuation_quality(edited(s, None), FIRST, LAST, style="empty", reference=s)
        for _, s in chorales[:5]
    ]
    accompaniment = accompaniment_quality(chorales[0][1], ["Soprano"], LOWER_VOICES, style="bach")
    rows = summarise([*real_continuations, *empties, accompaniment], total=True)
    assert [r.style for r in rows] == ["bach", "empty", "all"]
    assert rows[0].accompaniments == 1 and rows[0].consonance_share > 0.7
    checks = check_targets(rows)
    bach = {c.target: c.passed for c in checks if c.style == "bach"}
    empty = {c.target: c.passed for c in checks if c.style == "empty"}
    assert bach["median density ratio >= 0.7"] and bach["mean key cosine >= 0.8"]
    assert bach["no piece with density ratio < 0.3"]
    assert not any(empty.values()) and len(empty) == 4  # no drums: that target does not apply
    table = render_table(rows)
    assert table.splitlines()[0].startswith("| style | pieces |") and "| empty |" in table
    assert "drums continued" not in table  # no piece has drums
    assert "FAIL" in render_targets(checks) and "pass" in render_targets(checks, markdown=False)
    assert len(render_table(rows, markdown=False).splitlines()) == 4


def test_errors_and_key_estimate(chorales):
    _, score = chorales[0]
    with pytest.raises(ConfigError, match="starts after"):
        continuation_quality(score, piece_bars(score) + 1, piece_bars(score) + 3)
    for first, last in ((0, 4), (8, 8)):
        with pytest.raises(ConfigError, match="first_bar"):
            continuation_quality(score, first, last)
    with pytest.raises(ConfigError, match="reference"):
        continuation_quality(score, FIRST, LAST, reference=prompt_of(score, 10))
    with pytest.raises(MidiError, match="context bars"):
        continuation_quality(edited(score, None, 4, 8), FIRST, LAST)
    with pytest.raises(MidiError, match="no notes"):
        continuation_quality(Score(480), 1, 2)
    with pytest.raises(ConfigError, match="Melody"):
        accompaniment_quality(score, ["Melody"], LOWER_VOICES)
    assert accompaniment_quality(score, ["Soprano"], ["Alto", "Piano"]).missing_tracks == ("Piano",)
    # The profiles themselves give their own keys; a whole chorale a key of its own scale.
    assert estimate_key(np.array(KK_MAJOR)) == "C major" and estimate_key(np.roll(KK_MINOR, 9)) == "A minor"
    histogram = pitch_class_histogram(score, 0, score.end() + 1)
    key = estimate_key(histogram)
    assert key is not None and histogram[PITCH_NAMES.index(key.split()[0])] > 0
    assert estimate_key(histogram * 0) is None

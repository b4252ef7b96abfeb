"""Piano rolls of real chorales, and token sequences printed as text."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from notewave.core.midi import load_score
from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT
from notewave.symbolic.layout import ids_to_text, piece_ids
from notewave.symbolic.piece import piece_from_score
from notewave.symbolic.plot import draw_piano_roll, plot_piano_roll
from notewave.symbolic.vocab import Vocab


def test_draw_piano_roll_draws_every_note(jsb_test_files):
    score = load_score(jsb_test_files[0])
    fig = Figure()
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    draw_piano_roll(left, score, mark_tick=score.ticks_per_quarter * 8, title="chorale")
    boxes = [p.get_extents() for c in left.collections for p in c.get_paths()]
    notes = [n for t in score.tracks for n in t.notes]
    assert len(boxes) == len(notes)
    tpq = score.ticks_per_quarter
    assert min(b.x0 for b in boxes) == min(n.time for n in notes) / tpq
    assert max(b.x1 for b in boxes) == max(n.time + n.duration for n in notes) / tpq
    assert left.get_title() == "chorale" and len(left.get_legend().texts) == len(score.tracks) + 1
    draw_piano_roll(right, score, legend=False)
    assert right.get_legend() is None


def test_plot_piano_roll_writes_a_png(jsb_test_files, tmp_path):
    from matplotlib.image import imread

    path = plot_piano_roll(load_score(jsb_test_files[1]), tmp_path / "roll.png")
    assert imread(path).shape[:2] == (450, 1200)


def test_ids_to_text_lays_out_bars_tracks_and_fills(jsb_test_files):
    vocab = Vocab.load(DEFAULT_SYMBOLIC_CHECKPOINT)
    piece = piece_from_score(load_score(jsb_test_files[0]))
    ids = piece_ids(vocab, piece, 0, 3, style="bach", fills=[(1, 3)])
    text = ids_to_text(vocab, ids, width=80)
    assert text.split() == [vocab.name(i) for i in ids]
    lines = text.splitlines()
    assert lines[0].startswith("BOS Style_bach TimeSig_")
    assert sum(line == "Bar" for line in lines) == 3
    tracks = [line.split()[0] for line in lines if line.startswith("    Track_")]
    assert tracks == [f"Track_{i}" for i in range(piece.tracks)] * 3
    assert "    Track_3 Fill" in lines
    assert lines[-1].endswith("FillEnd") and any(line.startswith("FillStart Track_3") for line in lines)
    assert max(len(line) for line in lines) <= 80 + max(len(vocab.name(i)) for i in np.unique(ids))


def test_draw_piano_roll_gives_each_band_track_its_own_colour():
    from notewave.paths import DATA_DIR

    band = load_score(DATA_DIR / "examples" / "freedoom2_D_COUNT2.mid")
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = draw_piano_roll(fig.add_subplot(), band)
    colours = {tuple(line.get_color()) for line in ax.get_legend().get_lines()[: len(band.tracks)]}
    assert len(band.tracks) == 12 and len(colours) == 12

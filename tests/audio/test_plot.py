"""Audio-side pictures: codebook patterns as grids and log-mel spectrograms of real audio."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from notewave.audio.lm.patterns import PATTERNS, get_pattern
from notewave.audio.plot import draw_pattern, draw_spectrogram, log_mel_db
from notewave.core.audio_io import load_audio
from notewave.errors import AudioError, ConfigError

WESNOTH = "/usr/share/games/wesnoth/1.16/data/core/music/traveling_minstrels.ogg"


def _axes():
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig.add_subplot()


@pytest.mark.parametrize("name", PATTERNS)
def test_draw_pattern_labels_every_code_with_its_frame(name):
    k, t = 4, 5
    pattern = get_pattern(name, k)
    ax = draw_pattern(_axes(), pattern, t)
    labels = {(round(x.get_position()[1]), round(x.get_position()[0])): int(x.get_text()) for x in ax.texts}
    layout = pattern.step_positions(t)
    assert len(ax.texts) == k * t == len(labels)
    for (book, step), frame in labels.items():
        assert layout[book, step] == frame
    assert sorted(labels.values()) == sorted(list(range(t)) * k)
    assert ax.get_xlim()[1] == pytest.approx(pattern.num_steps(t) - 0.5)
    assert f"{pattern.num_steps(t)} steps" in ax.get_title()


def test_draw_pattern_rejects_bad_frames():
    with pytest.raises(ConfigError, match="num_frames"):
        draw_pattern(_axes(), get_pattern("delay", 2), 0)


def test_log_mel_peaks_at_a_sine_and_follows_real_audio():
    rate = 32000
    sine = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(rate) / rate).astype(np.float32)
    spec = log_mel_db(sine, rate)
    assert spec.shape == (128, 1 + rate // 512) and spec.dtype == np.float32
    import librosa

    centres = librosa.mel_frequencies(130, fmin=0.0, fmax=rate / 2)[1:-1]
    peak = centres[int(np.median(spec.argmax(axis=0)))]
    assert 900 < peak < 1100
    wav, _ = load_audio(WESNOTH, rate, True, None, 20.0, 2.0)
    music = log_mel_db(wav, rate)
    quiet = log_mel_db(wav * 0.1, rate)
    above_floor = quiet > -95.0  # log_mel_db floors at -100 dB
    assert above_floor.mean() > 0.9
    assert np.allclose((music - quiet)[above_floor], 20.0, atol=0.05)  # 20 dB for amplitude x 10


def test_draw_spectrogram_draws_the_log_mel_image():
    rate = 32000
    wav, _ = load_audio(WESNOTH, rate, True, None, 20.0, 3.0)
    ax = _axes()
    image = draw_spectrogram(ax, wav, rate, title="minstrels")
    assert np.array_equal(image.get_array(), log_mel_db(wav, rate))
    assert image.get_extent()[1] == pytest.approx(3.0, abs=0.02)
    assert ax.get_title() == "minstrels"
    with pytest.raises(AudioError, match="mono"):
        draw_spectrogram(ax, np.zeros((2, 100), np.float32), rate)
    with pytest.raises(AudioError, match="NaN"):
        log_mel_db(np.full(100, np.nan, np.float32), rate)


def test_plot_codebook_usage_keeps_the_callers_backend(tmp_path):
    """A notebook's inline backend must survive the codec's usage plot (it used to switch to Agg)."""
    import matplotlib
    from matplotlib.image import imread

    from notewave.audio.codec.metrics import plot_codebook_usage
    from notewave.audio.codec.model import Codec, encode_audio

    codec = Codec.from_pretrained()
    codes = encode_audio(codec, WESNOTH, offset=20.0, duration=2.0)
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        png = plot_codebook_usage(codes, codec.codebook_size, tmp_path / "usage.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert imread(png).shape[:2] == (280, round(320 * codec.num_codebooks))


def test_save_spectrograms_writes_one_png_or_nothing(tmp_path):
    from notewave.audio.plot import save_spectrograms

    wav = load_audio(WESNOTH, 32000, offset=10.0, duration=1.0)[0][0]
    out = save_spectrograms([("real", wav), ("quieter", 0.1 * wav)], 32000, tmp_path / "a" / "spec.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    bad = wav.copy()
    bad[100] = np.nan
    with pytest.raises(AudioError, match="NaN"):
        save_spectrograms([("real", wav), ("broken", bad)], 32000, tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a"]

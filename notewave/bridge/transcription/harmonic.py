"""Harmonic stacking for the transcriber: a semitone spectrogram shifted by harmonics, one channel each.

Why: on SoundFonts and engines it never trained on, most of the transcriber's false notes are at a
true onset an octave or a twelfth from a note it also finds (harmonic confusions, measured on the
validation renders). Its convolutions (3x3 over mel bands) see only a few neighbouring bands, and
harmonics of one note lie 12, 19, 24, ... semitones apart. Stacking the spectrum at those shifts
(the harmonic CQT of Bittner et al., "Deep Salience Representations for F0 Estimation in Polyphonic
Music", ISMIR 2017, also the input of basic-pitch) puts a key's sub-harmonic, fundamental and
upper harmonics in one column, so small convolutions compare them directly.

* :func:`semitone_filterbank`: triangular filters on the STFT bins, one per MIDI pitch from
  ``MIN_MIDI - 12`` up to ``MAX_MIDI + 31`` (so every shift of every key has a bin; filters past the
  Nyquist frequency are empty), each spanning its neighbours' centres but at least 1.5 STFT bins
  wide (low notes are narrower than a bin), normalised to sum 1.
* :class:`HarmonicStack`: ``log(filterbank @ |STFT| + 1e-5)`` ``[B, T, bins]`` (computed by the
  transcriber's features, so that chunked inference splits it with the log-mel) -> the
  :data:`HARMONICS` shifts as channels ``[B, H, T, 88]`` -> batch norm -> two 3x3 convolutions ->
  a 1x1 convolution to 4 maps per key -> a linear layer to ``d_model`` features per frame, added to
  the acoustic features. That last layer starts at zero, so a checkpoint that gains the branch
  (``notewave train transcriber --init CKPT --harmonic-channels C``) starts from its exact output.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

#: harmonics stacked (0.5 = the sub-harmonic an octave below), Bittner et al. 2017's set up to 6
HARMONICS = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


def semitone_shift(harmonic: float) -> int:
    """Semitones from a note to its ``harmonic``-th partial (a frequency ratio > 0): 12 log2(h), rounded
    (2 -> 12, 3 -> 19, 0.5 -> -12)."""
    return int(round(12 * math.log2(harmonic)))


#: each harmonic's shift in whole semitones (:func:`semitone_shift`: -12, 0, 12, 19, 24, 28, 31)
SHIFTS = tuple(semitone_shift(h) for h in HARMONICS)
MAPS_PER_KEY = 4


def semitone_filterbank(sample_rate: int, n_fft: int, lowest_midi: int, n_bins: int) -> np.ndarray:
    """Triangular semitone filters float32 ``[n_bins, n_fft // 2 + 1]`` (see the module docstring).

    Bin ``i`` is centred on MIDI pitch ``lowest_midi + i`` (440 Hz at MIDI 69); rows past the Nyquist
    frequency are zero; every other row sums to 1.
    """
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    bin_hz = sample_rate / n_fft
    fb = np.zeros((n_bins, len(freqs)), np.float64)
    for i in range(n_bins):
        centre = 440.0 * 2.0 ** ((lowest_midi + i - 69) / 12)
        if centre >= sample_rate / 2:
            continue
        lo = min(centre * 2 ** (-1 / 12), centre - 0.75 * bin_hz)
        hi = max(centre * 2 ** (1 / 12), centre + 0.75 * bin_hz)
        up = (freqs - lo) / (centre - lo)
        down = (hi - freqs) / (hi - centre)
        row = np.clip(np.minimum(up, down), 0.0, None)
        if row.sum() == 0:  # narrower than the bin grid: the nearest bin
            row[int(np.argmin(np.abs(freqs - centre)))] = 1.0
        fb[i] = row / row.sum()
    return fb.astype(np.float32)


class HarmonicStack(nn.Module):
    """Semitone log-spectrum ``[B, T, n_bins]`` -> features ``[B, T, d_model]`` (see the module docstring).

    Args:
        n_keys: output keys (88); lowest_midi of the spectrum is the lowest key minus 12.
        channels: convolution channels; d_model: output features per frame.
    """

    def __init__(self, n_keys: int, channels: int, d_model: int):
        super().__init__()
        self.n_keys = n_keys
        self.offset = -min(SHIFTS)  # bin of the lowest key

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.norm = nn.BatchNorm2d(len(SHIFTS))
        self.conv = nn.Sequential(
            *block(len(SHIFTS), channels),
            *block(channels, channels),
            nn.Conv2d(channels, MAPS_PER_KEY, 1),
            nn.ReLU(),
        )
        self.proj = nn.Linear(MAPS_PER_KEY * n_keys, d_model)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    @staticmethod
    def n_bins(n_keys: int) -> int:
        """Semitone bins the spectrum needs: the keys plus the lowest and highest shifts."""
        return n_keys + max(SHIFTS) - min(SHIFTS)

    def forward(self, log_spec: torch.Tensor) -> torch.Tensor:
        stack = torch.stack(
            [log_spec[..., self.offset + s : self.offset + s + self.n_keys] for s in SHIFTS], 1
        )  # [B, H, T, keys]
        x = self.conv(self.norm(stack))  # [B, maps, T, keys]
        return self.proj(x.permute(0, 2, 1, 3).flatten(2))

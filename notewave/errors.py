"""Exception types raised by notewave.

Every error a user can cause (a bad file, a missing soundfont, a checkpoint that does
not load, a style the model never saw) is reported as a subclass of
:class:`NotewaveError` with a message that names the offending file or value, so that
callers can catch one type and never see a traceback from deep inside a dependency.
"""

from __future__ import annotations


class NotewaveError(Exception):
    """Base class of every error notewave raises on purpose."""


class MidiError(NotewaveError):
    """A MIDI file is missing, unreadable, corrupt, empty or has no usable notes."""


class AudioError(NotewaveError):
    """An audio file or waveform is unreadable, empty, silent or holds NaN/inf samples."""


class SoundfontError(NotewaveError):
    """No usable SoundFont (.sf2) was found, or the given one cannot be loaded."""


class RenderError(NotewaveError):
    """FluidSynth is missing or failed to render (library not installed, bad sample rate)."""


class CheckpointError(NotewaveError):
    """A checkpoint directory is missing, truncated, or does not match the model."""


class ConditioningError(NotewaveError):
    """A conditioning value (style, instrument, melody, text) the model cannot use."""


class TokenizerError(NotewaveError):
    """Tokens cannot be produced from, or decoded to, MIDI."""


class DataError(NotewaveError):
    """A dataset file or folder is missing or malformed."""


class ConfigError(NotewaveError):
    """An invalid option or configuration value."""


class NotationError(NotewaveError):
    """A notation program (MuseScore 3) is missing, fails, times out or writes unreadable MusicXML."""

"""The symbolic side: a MuseNet-style transformer over multitrack MIDI tokens (bar-major, MMM bar-fill)."""

from notewave.symbolic.model import MidiLM
from notewave.symbolic.vocab import Vocab

__all__ = ["MidiLM", "Vocab"]

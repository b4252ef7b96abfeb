"""The symbolic side: a MuseNet-style transformer over REMI MIDI tokens."""

from notewave.symbolic.model import MidiLM
from notewave.symbolic.tokenizer import MidiTokenizer

__all__ = ["MidiLM", "MidiTokenizer"]

"""Assembled, user-facing objects over the building blocks (nothing below imports this package).

* :class:`~notewave.pipelines.composer.Composer`: a MIDI LM with its tokenizer -> continue MIDI.
* :class:`~notewave.pipelines.sound.SoundGenerator`: an audio LM with its codec -> audio.
"""

from notewave.pipelines.composer import Composer
from notewave.pipelines.sound import SoundGenerator

__all__ = ["Composer", "SoundGenerator"]

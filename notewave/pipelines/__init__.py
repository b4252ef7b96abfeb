"""Assembled, user-facing objects over the building blocks (nothing below imports this package).

* :class:`~notewave.pipelines.composer.Composer`: a MIDI LM with its tokenizer -> continue MIDI.
* :class:`~notewave.pipelines.sound.SoundGenerator`: an audio LM with its codec -> audio.
* :func:`~notewave.pipelines.hybrid.compose`: sketch -> MIDI -> audio (FluidSynth and the audio LM);
  :func:`~notewave.pipelines.hybrid.continue_audio`: recording -> notes -> continuation -> audio.
"""

from notewave.pipelines.composer import Composer
from notewave.pipelines.hybrid import compose, continue_audio
from notewave.pipelines.hybrid_report import ComposeResult, ContinueAudioResult
from notewave.pipelines.sound import SoundGenerator

__all__ = ["ComposeResult", "Composer", "ContinueAudioResult", "SoundGenerator", "compose", "continue_audio"]

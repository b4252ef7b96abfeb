"""Real audio for the codec, the audio LM and the transcriber (``notewave data game-music|renders``).

* :mod:`notewave.audio.sources.packages`: the registry of Debian game-music packages
  (:data:`GAME_MUSIC`) and the plan of an export (tracks, held-out split);
* :mod:`notewave.audio.sources.game_music`: :func:`export_game_music`, decoding every track to
  mono 32 kHz FLAC in ``OUT/<package>/<train|test>/``, with a cache and a data card
  (:mod:`notewave.audio.sources.card`);
* :mod:`notewave.audio.sources.renders`: :func:`export_renders`, FluidSynth renders of MIDI folders
  with several SoundFonts, reverb and chorus, keeping each MIDI file's split.
"""

from __future__ import annotations

from notewave.audio.sources.game_music import decode_track, export_game_music
from notewave.audio.sources.packages import GAME_MUSIC, GamePackage, TrackJob, plan_tracks, select_packages
from notewave.audio.sources.renders import export_renders, plan_renders

__all__ = [
    "GAME_MUSIC",
    "GamePackage",
    "TrackJob",
    "decode_track",
    "export_game_music",
    "export_renders",
    "plan_renders",
    "plan_tracks",
    "select_packages",
]

"""Bridge from symbolic music to audio: FluidSynth rendering of MIDI and SoundFont lookup.

Importing this package does not need FluidSynth; it is loaded when a render is run.
"""

from notewave.bridge.render import add_cli, render, render_file, render_folder, render_midi, write_wav
from notewave.bridge.soundfont import find_soundfont, list_soundfonts

__all__ = [
    "add_cli",
    "find_soundfont",
    "list_soundfonts",
    "render",
    "render_file",
    "render_folder",
    "render_midi",
    "write_wav",
]

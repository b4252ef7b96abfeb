"""Bridge between symbolic music and audio: FluidSynth rendering, melody chroma, SoundFont lookup.

Importing this package does not need FluidSynth; it is loaded when a render is run.
"""

from notewave.bridge.chroma import chroma_from_audio, chroma_from_midi, chroma_similarity
from notewave.bridge.render import add_cli, render, render_file, render_folder, render_midi, write_wav
from notewave.bridge.soundfont import find_soundfont, list_soundfonts

__all__ = [
    "add_cli",
    "chroma_from_audio",
    "chroma_from_midi",
    "chroma_similarity",
    "find_soundfont",
    "list_soundfonts",
    "render",
    "render_file",
    "render_folder",
    "render_midi",
    "write_wav",
]

"""Bridge between symbolic music and audio: FluidSynth rendering, melody chroma, SoundFont lookup,
and transcription of audio back to notes.

Importing this package does not need FluidSynth; it is loaded when a render is run.
"""

from notewave.bridge.chroma import chroma_from_audio, chroma_from_midi, chroma_similarity
from notewave.bridge.render import render, render_file, render_folder, render_midi, write_wav
from notewave.bridge.soundfont import find_soundfont, list_soundfonts
from notewave.bridge.transcription.transcribe import transcribe, transcribe_file

__all__ = [
    "chroma_from_audio",
    "chroma_from_midi",
    "chroma_similarity",
    "find_soundfont",
    "list_soundfonts",
    "render",
    "render_file",
    "render_folder",
    "render_midi",
    "transcribe",
    "transcribe_file",
    "write_wav",
]

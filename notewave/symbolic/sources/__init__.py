"""Real MIDI sources as MIDI files (``notewave data ...``): the JSB Chorales and music21's bundled corpus.

The conversion code lives in :mod:`notewave.symbolic.sources.jsb` and
:mod:`notewave.symbolic.sources.music21`; this package re-exports their public API.
The command line (:mod:`notewave.cli.data`)::

    notewave data jsb [JSON_PATH] [--out data/jsb] [--splits train valid test] [--tempo 80] [--program 19]
    notewave data music21 --collection bach [--out data/music21/<collection>] [--limit N]
    notewave data music21 --list
"""

from __future__ import annotations

from notewave.symbolic.sources.jsb import (
    JSB_CHOIR_PROGRAM,
    JSB_DEFAULT_TEMPO_BPM,
    JSB_ENV_VAR,
    JSB_ORGAN_PROGRAM,
    JSB_SPLITS,
    JSB_VELOCITY,
    JSB_VOICES,
    convert_jsb,
    default_jsb_json,
    jsb_chorale_to_score,
    load_jsb_json,
    voice_runs,
)
from notewave.symbolic.sources.music21 import (
    MUSIC21_COLLECTIONS,
    export_music21,
    export_music21_collection,
    list_music21_collections,
    music21_collection_files,
)

__all__ = [
    "JSB_CHOIR_PROGRAM",
    "JSB_DEFAULT_TEMPO_BPM",
    "JSB_ENV_VAR",
    "JSB_ORGAN_PROGRAM",
    "JSB_SPLITS",
    "JSB_VELOCITY",
    "JSB_VOICES",
    "MUSIC21_COLLECTIONS",
    "convert_jsb",
    "default_jsb_json",
    "export_music21",
    "export_music21_collection",
    "jsb_chorale_to_score",
    "list_music21_collections",
    "load_jsb_json",
    "music21_collection_files",
    "voice_runs",
]

"""Real MIDI sources as MIDI files (``notewave data ...``): the JSB Chorales, music21's bundled
corpus, Freedoom's game music and MMA's accompaniment grooves.

The conversion code lives in :mod:`notewave.symbolic.sources.jsb`,
:mod:`notewave.symbolic.sources.music21` (with ``music21_collections``, ``music21_convert``,
``music21_jsb`` and ``music21_card``), :mod:`notewave.symbolic.sources.freedoom` and
:mod:`notewave.symbolic.sources.mma` (data card and splits:
:mod:`notewave.symbolic.sources.card`); this package re-exports their public API.
The command line (:mod:`notewave.cli.data`)::

    notewave data jsb [JSON_PATH] [--out data/jsb] [--splits train valid test] [--tempo 80] [--program 19]
    notewave data music21 [--out data/music21] [--collections a,b,...] [--limit N] [--jobs N]
    notewave data music21 --list
    notewave data freedoom [--out data/freedoom]
    notewave data mma [--out data/mma] [--limit N] [--jobs N]
"""

from __future__ import annotations

from notewave.symbolic.sources.card import SPLITS, count_bars, piece_stats, split_for
from notewave.symbolic.sources.freedoom import (
    FREEDOOM_WADS,
    WadLump,
    export_freedoom,
    read_wad,
    wad_music_lumps,
)
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
from notewave.symbolic.sources.mma import (
    STYLE_PREFIXES,
    export_mma,
    groove_song,
    groove_style,
    library_grooves,
)
from notewave.symbolic.sources.music21 import default_jobs as music21_default_jobs
from notewave.symbolic.sources.music21 import export_music21
from notewave.symbolic.sources.music21_collections import (
    MUSIC21_COLLECTIONS,
    MUSIC21_EXCLUDED,
    MUSIC21_STYLES,
    Music21Collection,
    Music21Piece,
    list_music21_collections,
    music21_pieces,
)
from notewave.symbolic.sources.music21_jsb import match_jsb

__all__ = [
    "FREEDOOM_WADS",
    "JSB_CHOIR_PROGRAM",
    "JSB_DEFAULT_TEMPO_BPM",
    "JSB_ENV_VAR",
    "JSB_ORGAN_PROGRAM",
    "JSB_SPLITS",
    "JSB_VELOCITY",
    "JSB_VOICES",
    "MUSIC21_COLLECTIONS",
    "MUSIC21_EXCLUDED",
    "MUSIC21_STYLES",
    "Music21Collection",
    "Music21Piece",
    "SPLITS",
    "STYLE_PREFIXES",
    "WadLump",
    "convert_jsb",
    "count_bars",
    "default_jsb_json",
    "export_freedoom",
    "export_mma",
    "export_music21",
    "groove_song",
    "groove_style",
    "jsb_chorale_to_score",
    "library_grooves",
    "list_music21_collections",
    "load_jsb_json",
    "match_jsb",
    "music21_default_jobs",
    "music21_pieces",
    "piece_stats",
    "read_wad",
    "split_for",
    "voice_runs",
    "wad_music_lumps",
]

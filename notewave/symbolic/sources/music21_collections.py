"""The collections of music21's bundled corpus that ``notewave data music21`` exports.

:data:`MUSIC21_COLLECTIONS` maps each exported corpus folder to a
:class:`Music21Collection`: its style label (one of :data:`MUSIC21_STYLES`), the General
MIDI programs given to parts without a usable instrument, whether the instruments
written in the files can be trusted, and its licence as far as the files and music21's
``corpus/license.txt`` state it. :data:`MUSIC21_EXCLUDED` lists the corpus folders left
out and why. :func:`music21_pieces` lists the pieces of the chosen collections: one per
score file, one per tune of an ABC file holding several tunes (``X:`` fields), and one
per file for :attr:`Music21Collection.voices` collections, whose ABC tunes are the
voices of one piece. Only the corpus folder of the installed music21 is read (offline).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from notewave.errors import ConfigError, DataError

MUSIC21_STYLES = (
    "bach",
    "renaissance",
    "medieval",
    "baroque",
    "classical",
    "romantic",
    "ragtime",
    "folk",
    "irish",
)
# General MIDI programs (zero-based).
PIANO, ORGAN, VIOLIN, GUITAR_STEEL, CHOIR, VOICE, FLUTE = 0, 19, 40, 25, 52, 53, 73
# Score formats in order of preference when one folder holds a work in several.
SCORE_SUFFIXES = (".mxl", ".musicxml", ".xml", ".krn", ".abc")
_PD = "music public domain (composer died over 100 years ago)"
_CORPUS = "distributed in music21's corpus with the encoders' permission (corpus/license.txt)"


@dataclass(frozen=True)
class Music21Collection:
    """How one music21 corpus folder is exported.

    ``program`` is the GM program of a part whose instrument is unknown,
    ``voice_program`` that of a vocal part (recognised by its name: Soprano, Cantus,
    Tenor, Voice, ...). With ``trust_instruments`` the instrument objects in the files
    are kept (some files carry notation-software defaults, e.g. Monteverdi's voices as
    "Piano", and are not trusted). ``chords`` is the GM program of a track realising the
    file's chord symbols (lead sheets), or None. ``voices``: the ABC tunes of a file are
    the voices of one piece. ``tempo_bpm``: tempo set where a score has none (else
    music21's 120). ``file_styles`` overrides the style per file stem; ``exclude``
    lists file stems left out.
    """

    style: str
    program: int
    voice_program: int
    trust_instruments: bool
    licence: str
    about: str
    chords: int | None = None
    voices: bool = False
    tempo_bpm: float | None = None
    file_styles: dict[str, str] = field(default_factory=dict)
    exclude: frozenset[str] = frozenset()


def _vocal(style: str, licence: str, about: str, **kw: object) -> Music21Collection:
    return Music21Collection(style, CHOIR, CHOIR, False, licence, about, **kw)  # type: ignore[arg-type]


def _instr(style: str, program: int, licence: str, about: str, **kw: object) -> Music21Collection:
    return Music21Collection(style, program, VOICE, True, licence, about, **kw)  # type: ignore[arg-type]


def _tunes(style: str, program: int, licence: str, about: str, **kw: object) -> Music21Collection:
    return Music21Collection(style, program, program, False, licence, about, **kw)  # type: ignore[arg-type]


_ENC = "encoding licence not stated in the files; " + _CORPUS
#: Exported corpus folder -> how it is exported (style, programs, licence).
MUSIC21_COLLECTIONS: dict[str, Music21Collection] = {
    "bach": Music21Collection(
        "bach",
        ORGAN,
        ORGAN,
        False,
        f"{_PD}; {_ENC}",
        "J. S. Bach's four-part chorales (BWV 1-438 and cantata/oratorio versions)",
        tempo_bpm=80.0,
        exclude=frozenset({"bwv846"}),  # the C major prelude of the Well-Tempered Clavier
    ),
    "palestrina": _vocal(
        "renaissance",
        f"{_PD}; Humdrum encoding (c) 2000 John Miller under the Humdrum Palestrina licence "
        f"(derivative electronic formats reserved); {_CORPUS}",
        "Palestrina mass movements (Humdrum)",
    ),
    "monteverdi": _vocal(
        "renaissance", f"{_PD}; MusicXML (c) Ut Orpheus Edizioni 2003; {_CORPUS}", "Monteverdi madrigals"
    ),
    "josquin": _vocal(
        "renaissance",
        f"{_PD}; ABC (c) 1999 Laura E. Conrad, GPL-2.0-or-later",
        "Josquin chansons and motets (one ABC tune per voice)",
        voices=True,
    ),
    "lusitano": _vocal("renaissance", f"{_PD}; encoding CC0 (M. S. A. Cuthbert)", "Lusitano madrigal"),
    "trecento": _vocal("medieval", f"{_PD}; {_ENC}", "Italian 14th-century songs and mass movements"),
    "ciconia": _vocal("medieval", f"{_PD}; encoding CC-BY-SA-3.0 (M. S. Cuthbert)", "Ciconia canon"),
    "luca": _vocal("medieval", f"{_PD}; encoding CC-BY-SA-3.0 (M. S. Cuthbert)", "D. Luca, Gloria (Q15)"),
    "corelli": _instr("baroque", VIOLIN, f"{_PD}; encoding CC-BY", "Corelli trio sonata movement"),
    "handel": _instr("baroque", PIANO, f"{_PD}; {_ENC}", "Handel, Rinaldo aria (voice and piano)"),
    "cpebach": _instr("baroque", PIANO, f"{_PD}; {_ENC}", "C. P. E. Bach keyboard piece"),
    "haydn": _instr("classical", VIOLIN, f"{_PD}; {_ENC}", "Haydn string quartets"),
    "mozart": _instr("classical", PIANO, f"{_PD}; {_ENC}", "Mozart string quartets, piano sonata K. 545"),
    "beethoven": _instr("classical", VIOLIN, f"{_PD}; {_ENC}", "Beethoven string quartets"),
    "schubert": _instr("romantic", PIANO, f"{_PD}; {_ENC}", "Schubert, Der Lindenbaum (voice and piano)"),
    "schumann_robert": _instr("romantic", PIANO, f"{_PD}; {_ENC}", "Robert Schumann quartet, songs"),
    "schumann_clara": _instr("romantic", PIANO, f"{_PD}; {_ENC}", "Clara Schumann polonaises, trio"),
    "chopin": _instr("romantic", PIANO, f"{_PD}; {_ENC}", "Chopin mazurka (Humdrum)"),
    "weber": _instr("romantic", PIANO, f"{_PD}; encoding public domain (1998)", "Weber clarinet concertino"),
    "verdi": _instr("romantic", PIANO, f"{_PD}; {_ENC}", "Verdi, La donna e mobile (piano)"),
    "beach": _instr(
        "romantic", PIANO, f"music public domain in the US (published 1914); {_ENC}", "Amy Beach choral song"
    ),
    "johnson_j_r": _instr(
        "romantic", PIANO, "public domain (1900); encoding CC0", "Lift Every Voice and Sing"
    ),
    "liliuokalani": _instr("romantic", PIANO, "public domain (1884); encoding CC0", "Aloha Oe"),
    "joplin": _instr("ragtime", PIANO, f"{_PD}; {_ENC}", "Joplin, Maple Leaf Rag"),
    "leadSheet": _tunes(
        "folk",
        PIANO,
        "compositions public domain (1854, 1911); the Berlin file's rights field says 'All Rights "
        f"Reserved', the Foster file's 'Public Domain'; {_CORPUS}",
        "lead sheets (melody and chord symbols): Foster, Berlin",
        chords=PIANO,
        file_styles={"berlinAlexandersRagtime": "ragtime"},
    ),
    "essenFolksong": _tunes(
        "folk",
        FLUTE,
        "Essen folk song collection (EsAC), ABC by Seymour Shlien: legal status unclear, permission "
        "for non-commercial use (essenFolksong/license.txt)",
        "Essen folk songs (German, Chinese, other European)",
        exclude=frozenset({"test0", "test1", "testd", "teste"}),  # test sets, mostly copies of other files
    ),
    "airdsAirs": _tunes(
        "folk",
        FLUTE,
        f"tunes public domain (published 1782-1803); ABC by Jack Campin, licence not stated; {_CORPUS}",
        "Aird's Selection of Scotch, English, Irish and Foreign Airs",
    ),
    "miscFolk": _tunes(
        "folk",
        FLUTE,
        f"tunes public domain (18th-19th c.); ABC by Jack Campin, licence not stated; {_CORPUS}",
        "American fife tunes, Northumbrian Minstrelsy",
    ),
    "nottingham-dataset": _tunes(
        "folk",
        FLUTE,
        f"Nottingham Music Database sample; {_ENC}",
        "Nottingham folk tunes with chord symbols (music21 ships 2)",
        chords=GUITAR_STEEL,
    ),
    "oneills1850": _tunes(
        "irish",
        VIOLIN,
        f"tunes public domain (published 1903); ABC by volunteer transcribers, licence not stated; {_CORPUS}",
        "O'Neill's Music of Ireland (1850 melodies)",
    ),
    "ryansMammoth": _tunes(
        "irish",
        VIOLIN,
        f"tunes public domain (published 1883); ABC by volunteer contributors, licence not stated; {_CORPUS}",
        "Ryan's Mammoth Collection of fiddle tunes",
    ),
}
#: Corpus folders left out of the export, and why.
MUSIC21_EXCLUDED: dict[str, str] = {
    "demos": "notation test files (chord-symbol tables, layout, tuplets), not pieces",
    "theoryExercises": "theory exercises",
    "schoenberg": "Op. 19 piano pieces (1911): free atonality fits no style label",
    "webern": "Op. 16 canon (1924): atonal, fits no style label",
}
#: Old collection names of ``notewave data music21 --collection`` -> corpus folders.
MUSIC21_ALIASES: dict[str, tuple[str, ...]] = {
    "essen": ("essenFolksong",),
    "oneill": ("oneills1850",),
    "schumann": ("schumann_robert", "schumann_clara"),
    "nottingham": ("nottingham-dataset",),
}
_X_FIELD = re.compile(r"^X:\s*(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Music21Piece:
    """One piece to export: a score file, one tune of an ABC file, or the tunes of a voices file.

    ``key`` is the corpus path without suffix plus ``#<X number>`` for a tune;
    ``split_key`` groups versions of one piece (Bach's ``bwv18.5-w``/``-lz`` share
    ``bach/bwv18.5``; O'Neill tunes that several files hold share their book number).
    """

    collection: str
    path: str
    number: int | None
    key: str
    split_key: str
    name: str
    voices: bool = False

    @property
    def style(self) -> str:
        """The piece's style label."""
        info = MUSIC21_COLLECTIONS[self.collection]
        return info.file_styles.get(Path(self.path).stem, info.style)


def corpus_root() -> Path:
    """The folder of music21's bundled corpus (found without importing music21, which is slow).

    Raises:
        DataError: music21 is not installed, or its corpus folder is missing.
    """
    spec = importlib.util.find_spec("music21")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations or not (Path(locations[0]) / "corpus").is_dir():
        raise DataError("music21's corpus is not installed: pip install music21")
    return (Path(locations[0]) / "corpus").resolve()


def resolve_collections(names: Iterable[str] | str | None) -> list[str]:
    """Corpus folder names for collection names (case-insensitive; old aliases accepted).

    ``None`` or an empty list means every collection of :data:`MUSIC21_COLLECTIONS`; a
    string is split at commas. The result keeps table order, without repeats.

    Raises:
        ConfigError: an unknown or excluded name (the message lists the known ones).
    """
    if isinstance(names, str):
        names = [name for name in names.split(",") if name.strip()]
    wanted = [name.strip() for name in names or []]
    if not wanted:
        return list(MUSIC21_COLLECTIONS)
    lowered = {name.lower(): (name,) for name in MUSIC21_COLLECTIONS}
    lowered.update({alias.lower(): folders for alias, folders in MUSIC21_ALIASES.items()})
    chosen: set[str] = set()
    for name in wanted:
        if name.lower() not in lowered:
            why = f" (left out: {MUSIC21_EXCLUDED[name]})" if name in MUSIC21_EXCLUDED else ""
            known = ", ".join(MUSIC21_COLLECTIONS)
            raise ConfigError(f"unknown music21 collection {name!r}{why}; known collections: {known}")
        chosen.update(lowered[name.lower()])
    return [name for name in MUSIC21_COLLECTIONS if name in chosen]


def collection_files(collection: str, root: Path | None = None) -> list[Path]:
    """Score files of one corpus folder, relative to the corpus root, sorted.

    One file per work: when a folder holds a work in several formats (``bwv277.krn`` and
    ``bwv277.mxl``) the first of :data:`SCORE_SUFFIXES` wins; analyses (``.rntxt``) and
    other files are ignored, and so are the collection's ``exclude`` stems.
    """
    base = root if root is not None else corpus_root()
    info = MUSIC21_COLLECTIONS[collection]
    chosen: dict[str, Path] = {}
    for path in (base / collection).rglob("*"):
        suffix = path.suffix.lower()
        if suffix not in SCORE_SUFFIXES or not path.is_file() or path.stem in info.exclude:
            continue
        relative = path.relative_to(base)
        stem = relative.with_suffix("").as_posix()
        best = chosen.get(stem)
        if best is None or SCORE_SUFFIXES.index(suffix) < SCORE_SUFFIXES.index(best.suffix.lower()):
            chosen[stem] = relative
    return [chosen[stem] for stem in sorted(chosen)]


def _split_key(collection: str, stem: str, number: int | None) -> str:
    if collection == "bach":
        match = re.match(r"bwv\d+(\.\d+)?", Path(stem).name)
        return f"bach/{match.group(0)}" if match else stem
    if collection == "oneills1850" and number is not None:
        return f"oneills1850#{number}"
    return stem if number is None else f"{stem}#{number}"


def music21_pieces(
    collections: Iterable[str] | str | None = None,
    limit: int | None = None,
    only: Sequence[str] | None = None,
    root: Path | None = None,
) -> list[Music21Piece]:
    """The pieces of the chosen collections, in table order, then corpus path and tune number.

    ``only`` keeps pieces whose key (``bach/bwv26.6``, ``oneills1850/0001-0050#7``)
    matches one of these shell patterns; ``limit`` then keeps the first N pieces of each
    collection.

    Raises:
        ConfigError: an unknown collection, or ``limit`` not a positive integer.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive whole number or None, got {limit!r}")
    base = root if root is not None else corpus_root()
    pieces: list[Music21Piece] = []
    for collection in resolve_collections(collections):
        info = MUSIC21_COLLECTIONS[collection]
        found: list[Music21Piece] = []
        for relative in collection_files(collection, base):
            stem = relative.with_suffix("").as_posix()
            numbers: list[int | None] = [None]
            if relative.suffix.lower() == ".abc" and not info.voices:
                text = (base / relative).read_text(encoding="latin-1")
                tunes = [int(x) for x in _X_FIELD.findall(text)]
                numbers = list(tunes) if len(tunes) > 1 else [None]
            for number in numbers:
                key = stem if number is None else f"{stem}#{number}"
                if only and not any(fnmatch.fnmatchcase(key, pattern) for pattern in only):
                    continue
                name = stem.replace("/", "_") + ("" if number is None else f"_{number:04d}")
                found.append(
                    Music21Piece(
                        collection,
                        relative.as_posix(),
                        number,
                        key,
                        _split_key(collection, stem, number),
                        re.sub(r"[^A-Za-z0-9._-]+", "_", name) + ".mid",
                        info.voices,
                    )
                )
        pieces.extend(found[:limit])
    return pieces


def list_music21_collections() -> dict[str, int]:
    """``{collection: number of pieces}`` for every collection (an ABC tune counts as a piece)."""
    counts = {name: 0 for name in MUSIC21_COLLECTIONS}
    for piece in music21_pieces():
        counts[piece.collection] += 1
    return counts

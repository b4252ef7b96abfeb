"""Export works from music21's bundled corpus to MIDI files, offline.

music21 ships a local corpus (MusicXML, Humdrum ``.krn`` and ABC files) inside its
package; nothing here touches the network. A collection is a friendly name mapped to one
or more corpus folders in :data:`MUSIC21_COLLECTIONS`. Analysis files (``.rntxt``) are
left out, and when one folder holds the same work in several formats (e.g. ``bwv277.krn``
and ``bwv277.mxl``) only the preferred one (MusicXML over Humdrum over ABC) is used.
ABC "opus" files (``essen``, ``oneill``) hold many tunes each and give one MIDI file per
tune. music21 is imported lazily because importing it takes a few seconds.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

from tqdm import tqdm

from notewave.core.io import atomic_path
from notewave.errors import ConfigError

log = logging.getLogger(__name__)

#: Friendly collection name -> music21 corpus folders (``music21.corpus.getComposer`` names).
MUSIC21_COLLECTIONS: dict[str, tuple[str, ...]] = {
    "bach": ("bach",),
    "palestrina": ("palestrina",),
    "essen": ("essenFolksong",),
    "oneill": ("oneills1850",),
    "monteverdi": ("monteverdi",),
    "beethoven": ("beethoven",),
    "mozart": ("mozart",),
    "haydn": ("haydn",),
    "handel": ("handel",),
    "schumann": ("schumann_robert", "schumann_clara"),
    "joplin": ("joplin",),
    "ryansMammoth": ("ryansMammoth",),
    "trecento": ("trecento",),
}

# Score formats in order of preference when a work exists in more than one.
_SCORE_SUFFIXES = (".mxl", ".musicxml", ".xml", ".krn", ".abc")
# Corpus works (path relative to the corpus root, no suffix) left out of a collection:
# BWV 846 is the C major prelude of the Well-Tempered Clavier, not a chorale.
_EXCLUDED = frozenset({"bach/bwv846"})


def _corpus_root() -> Path:
    from music21 import corpus

    return Path(corpus.__file__).resolve().parent


def _resolve_collection(collection: str) -> str:
    if collection in MUSIC21_COLLECTIONS:
        return collection
    by_lower = {name.lower(): name for name in MUSIC21_COLLECTIONS}
    if collection.lower() in by_lower:
        return by_lower[collection.lower()]
    raise ConfigError(
        f"unknown music21 collection {collection!r}; known collections: {', '.join(MUSIC21_COLLECTIONS)}"
    )


def music21_collection_files(collection: str) -> list[Path]:
    """Return the corpus files of ``collection``, sorted by path relative to the corpus root.

    Raises:
        ConfigError: ``collection`` is not a key of :data:`MUSIC21_COLLECTIONS`
            (matched case-insensitively).
    """
    from music21 import corpus

    name = _resolve_collection(collection)
    root = _corpus_root()
    chosen: dict[str, Path] = {}
    for folder in MUSIC21_COLLECTIONS[name]:
        for found in corpus.getComposer(folder):
            path = Path(found).resolve()
            if path.suffix.lower() not in _SCORE_SUFFIXES:
                continue
            key = path.relative_to(root).with_suffix("").as_posix()
            if key in _EXCLUDED:
                continue
            rank = _SCORE_SUFFIXES.index(path.suffix.lower())
            if key not in chosen or rank < _SCORE_SUFFIXES.index(chosen[key].suffix.lower()):
                chosen[key] = path
    return [chosen[key] for key in sorted(chosen)]


def list_music21_collections() -> dict[str, int]:
    """Return ``{collection: number of corpus files}`` for every known collection.

    An ABC opus file (``essen``, ``oneill``) counts once although it holds many tunes.
    """
    return {name: len(music21_collection_files(name)) for name in MUSIC21_COLLECTIONS}


def _midi_name(relative: Path, number: int | None, width: int) -> str:
    stem = relative.with_suffix("").as_posix().replace("/", "_")
    if number is not None:
        stem = f"{stem}_{number:0{width}d}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) + ".mid"


def export_music21_collection(
    collection: str,
    out_dir: str | os.PathLike[str],
    limit: int | None = None,
    *,
    progress: bool = True,
) -> tuple[list[Path], int]:
    """Like :func:`export_music21`, but also return the number of works skipped."""
    from music21 import corpus, stream

    files = music21_collection_files(collection)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive whole number or None, got {limit!r}")
    root = _corpus_root()
    out = Path(out_dir)
    written: list[Path] = []
    skipped: list[str] = []
    with warnings.catch_warnings(), tqdm(files, unit="file", disable=not progress) as bar:
        # music21 warns about many harmless notation details; failures are counted instead.
        warnings.filterwarnings("ignore", module=r"music21(\.|$)")
        bar.set_description(f"music21 {collection}")
        for path in bar:
            if limit is not None and len(written) >= limit:
                break
            relative = path.relative_to(root)
            try:
                parsed = corpus.parse(str(path))
            except Exception as exc:  # music21 raises many unrelated exception types
                log.info("skipping %s: cannot parse (%s: %s)", relative, type(exc).__name__, exc)
                skipped.append(relative.as_posix())
                continue
            if isinstance(parsed, stream.Opus):
                scores = list(parsed.scores)
                numbered = [(i, score) for i, score in enumerate(scores, start=1)]
            else:
                numbered = [(None, parsed)]
            width = max(3, len(str(len(numbered))))
            for number, score in numbered:
                if limit is not None and len(written) >= limit:
                    break
                label = relative.as_posix() + ("" if number is None else f" #{number}")
                target = out / _midi_name(relative, number, width)
                try:
                    if not score.flatten().notes:
                        raise ValueError("no notes")
                    with atomic_path(target) as tmp:
                        score.write("midi", fp=str(tmp))
                except Exception as exc:  # a bad work is skipped, not fatal
                    log.info("skipping %s: cannot convert (%s: %s)", label, type(exc).__name__, exc)
                    skipped.append(label)
                    continue
                written.append(target)
    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(
            f"music21 collection {collection!r}: skipped {len(skipped)} work(s) that failed to "
            f"parse or convert ({shown})",
            stacklevel=2,
        )
    return written, len(skipped)


def export_music21(
    collection: str,
    out_dir: str | os.PathLike[str],
    limit: int | None = None,
    *,
    progress: bool = True,
) -> list[Path]:
    """Export a music21 corpus collection to ``out_dir`` as MIDI files; return their paths.

    One file per score: ``<corpus path with '/' as '_'>.mid``, e.g. ``bach_bwv1.6.mid``,
    plus ``_<n>`` (1-based position, zero-padded) for each tune of an opus file. Files
    are written by music21 (``Score.write('midi')``, tempo and instruments as music21
    derives them from the score) through a temporary file that is renamed on success.
    Works are taken in corpus-path order; ``limit`` caps the number of MIDI files written.
    A work that music21 cannot parse or convert, or that has no notes, is skipped; the
    number skipped is reported in one ``UserWarning`` at the end.

    Raises:
        ConfigError: an unknown collection (the message lists the known ones) or a
            ``limit`` that is not a positive integer.
    """
    written, _ = export_music21_collection(collection, out_dir, limit, progress=progress)
    return written

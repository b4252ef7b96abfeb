"""Voice assignment: giving generated notes of one program to several tracks of that program.

REMI with programs keeps one stream per program, so a chorale's four voices on one
organ program come back as one set of notes. To keep the prompt's track layout (one
track per voice, as a DAW user expects), each chord (notes with the same onset) is
split over the tracks: when it has as many notes as there are tracks, highest pitch to
the highest voice; otherwise each note goes to the free track whose last pitch is
nearest (smallest leap, the usual voice-leading rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from symusic import Note, Track


def _register(track: Track) -> float:
    pitches = [n.pitch for n in track.notes]
    return sum(pitches) / len(pitches) if pitches else 60.0


def assign_voices(tracks: Sequence[Track], notes: Sequence[Note]) -> None:
    """Append ``notes`` (any order, ticks of the tracks' score) to ``tracks`` in place.

    Tracks are ranked by their mean pitch (highest first); a track without notes counts
    as middle C. One track takes every note.
    """
    if len(tracks) == 1:
        for note in notes:
            tracks[0].notes.append(note)
        return
    order = sorted(range(len(tracks)), key=lambda i: -_register(tracks[i]))
    last = {i: (tracks[i].notes[-1].pitch if len(tracks[i].notes) else _register(tracks[i])) for i in order}
    for _, chord_iter in groupby(sorted(notes, key=lambda n: (n.time, -n.pitch)), key=lambda n: n.time):
        chord = list(chord_iter)  # highest pitch first
        if len(chord) == len(order):
            pairs = list(zip(order, chord))
        else:
            free = list(order)
            pairs = []
            for note in chord:
                if not free:
                    free = list(order)
                best = min(free, key=lambda i: (abs(last[i] - note.pitch), order.index(i)))
                free.remove(best)
                pairs.append((best, note))
        for index, note in pairs:
            tracks[index].notes.append(note)
            last[index] = note.pitch

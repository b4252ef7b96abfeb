"""Training data of the :class:`~notewave.bridge.transcription.model.Transcriber` (see
:mod:`notewave.bridge.transcription.train`): FluidSynth renders of real MIDI files.

Data: the MIDI files of each ``--midi`` folder (its ``train/`` sub-folder when there is one,
validation from ``valid/``; else every 20th file is held out for validation). The JSB test
split (``data/jsb/test``) is refused: it is kept for the round-trip benchmark.

Examples are made on the fly and cached in memory. A pool of "medleys" is kept: each medley
joins excerpts (at most ``excerpt_seconds`` long) of ``pieces_per_medley`` random pieces, each
with a random tempo factor (0.75..1.33), transposition (-5..+6 semitones, kept on the piano),
per-piece base velocity (45..110) with per-note jitter, and random General MIDI programs from the
training families (one program for every voice, or one per voice), rendered at 16 kHz with a
random SoundFont (TimGM6mb and FluidR3_GM when installed). The audio is stored with its
piano-roll labels (onset, offset and frame at 31.25 frames/s; velocity / 127 at onsets). Every
``refresh_every`` steps the oldest medley is replaced by a new render. A training example is a
random ``clip_seconds`` crop with random gain (-18..+8 dB) and, half of the time, white noise
(-75..-40 dBFS RMS).

Held out for the benchmark (never in training): the JSB test chorales and the GM "ensemble"
program family (48-55: string ensembles, choir aahs, voice oohs, synth voice, orchestra hit).

With an :class:`~notewave.bridge.transcription.augment.Augmentation` (``notewave train transcriber
--augment``, the default) the renders vary more (:mod:`notewave.bridge.transcription.augment`): every
installed SoundFont but a held-out one, FluidSynth reverb and chorus, a random EQ, the level set to
-16 dBFS RMS, the drum tracks of multi-track sources rendered under the pitched parts (never labels),
some voices keeping their own GM program, optionally (``synth``) random additive-synthesis instruments
for the pitched parts of a share of the medleys (:mod:`notewave.bridge.transcription.synth`), and per
crop a gain of -12..0 dB and coloured noise at 20..40 dB SNR instead of the gain and white noise above.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from symusic import Note, Score, Tempo, TimeSignature, Track

from notewave.bridge.transcription.augment import Augmentation, augment_crop, augment_medley, medley_effects
from notewave.bridge.transcription.model import HEADS, MAX_MIDI, MIN_MIDI, N_KEYS, TranscriberConfig
from notewave.bridge.transcription.notes import TICKS_PER_QUARTER, TICKS_PER_SECOND
from notewave.errors import DataError, SoundfontError
from notewave.paths import JSB_MIDI_DIR

TRAIN_FAMILIES: dict[str, tuple[int, ...]] = {
    "piano": tuple(range(0, 8)),
    "organ": tuple(range(16, 24)),
    "guitar": tuple(range(24, 32)),
    "bass": tuple(range(32, 40)),
    "strings": tuple(range(40, 47)),
    "brass": tuple(range(56, 64)),
    "reed": tuple(range(64, 72)),
    "pipe": tuple(range(72, 80)),
}
HELDOUT_FAMILIES: dict[str, tuple[int, ...]] = {"ensemble": tuple(range(48, 56))}
TRAIN_PROGRAMS = tuple(p for family in TRAIN_FAMILIES.values() for p in family)
TRAIN_SOUNDFONTS = ("TimGM6mb.sf2", "FluidR3_GM.sf2")

PieceNotes = np.ndarray  # float64 [n, 6]: start s, end s, pitch, velocity, voice index (-1: drums), program
# woodblock, taiko, melodic tom, ..., sound effects: never kept as a voice's own program
UNPITCHED_PROGRAMS = tuple(range(115, 128))


def load_piece(path: str | os.PathLike[str], drums: bool = False) -> PieceNotes:
    """Notes of a MIDI file as float64 rows ``[start_s, end_s, pitch, velocity, voice, program]`` sorted
    by start: the non-drum tracks' notes (voice 0, 1, ... per track, its GM program), and with ``drums``
    also the drum tracks' notes (voice -1, program -1; rendered, never labels). Raises MidiError."""
    from notewave.core.midi import load_score

    score = load_score(path).to("second")
    pitched = [t for t in score.tracks if not t.is_drum]
    rows = [
        (n.time, n.end, n.pitch, n.velocity, v, t.program) for v, t in enumerate(pitched) for n in t.notes
    ]
    if drums:
        rows += [
            (n.time, n.end, n.pitch, n.velocity, -1, -1) for t in score.tracks if t.is_drum for n in t.notes
        ]
    return np.array(sorted(rows), dtype=np.float64).reshape(-1, 6)


def training_files(folders: Sequence[str | os.PathLike[str]]) -> tuple[list[Path], list[Path]]:
    """Training and validation MIDI files of ``folders`` (see the module docstring).

    Raises:
        DataError: missing/empty folders, or a file from the held-out JSB test split.
    """
    from notewave.symbolic.train import split_folder

    train: list[Path] = []
    valid: list[Path] = []
    for folder in folders:
        t, v = split_folder(Path(folder))
        train += t
        valid += v
    test_dir = (JSB_MIDI_DIR / "test").resolve()
    for f in train + valid:
        if test_dir in f.resolve().parents:
            raise DataError(
                f"{f} is in the held-out JSB test split; train on data/jsb (train/ and valid/) instead"
            )
    if not train:
        raise DataError(f"no training MIDI files in {list(map(str, folders))}")
    return train, valid


def make_medley(
    pieces: Sequence[PieceNotes],
    rng: np.random.Generator,
    programs: Sequence[int] = TRAIN_PROGRAMS,
    excerpt_seconds: float = 30.0,
    augment: bool = True,
    mix: Augmentation | None = None,
) -> tuple[Score, np.ndarray]:
    """Join excerpts of ``pieces`` (with random programs and, when ``augment``, tempo/key/velocity changes).

    With ``mix`` (and ``mix.drums``) the pieces' drum rows (voice -1) go to a drum track (General MIDI
    percussion), at the piece's tempo factor and with velocities scaled by a random factor
    in ``mix.drum_velocity``, on a kit drawn from ``mix.drum_kits`` (when it lists more than one and
    ``augment``), but never to the labels; a voice keeps its own program with probability
    ``mix.source_programs`` (unless it is in a held-out family or :data:`UNPITCHED_PROGRAMS`); with
    ``mix.ensemble`` the ensemble family is a training family (random and own programs).

    Returns:
        ``(score, notes)``: a ``Score`` at 120 BPM (960 ticks per second), one track per program (and one
        drum track), and the pitched notes as float64 rows ``[start_s, end_s, pitch, velocity]`` on the
        same tick grid.
    """
    tracks: dict[int, Track] = {}
    labels, cursor = [], 0.0
    banned = {p for family in HELDOUT_FAMILIES.values() for p in family} | set(UNPITCHED_PROGRAMS)
    if mix is not None and mix.ensemble:
        banned -= set(HELDOUT_FAMILIES["ensemble"])
        programs = (*programs, *HELDOUT_FAMILIES["ensemble"])
    kits = mix.drum_kits if mix is not None else (0,)
    kit = int(rng.choice(kits)) if augment and len(kits) > 1 else int(kits[0])
    for notes in pieces:
        drum = notes[:, 4] < 0
        if mix is None or not mix.drums:
            notes, drum = notes[~drum], drum[~drum]
        if not len(notes):
            continue
        factor = float(np.exp(rng.uniform(np.log(0.75), np.log(1.33)))) if augment else 1.0
        shift = int(rng.integers(-5, 7)) if augment else 0
        pitches = notes[~drum, 2] if (~drum).any() else np.array([60.0])
        lo, hi = pitches.min() + shift, pitches.max() + shift
        shift -= int(max(0, hi - MAX_MIDI) - max(0, MIN_MIDI - lo))
        start, end = notes[:, 0] * factor, notes[:, 1] * factor
        first = 0.0
        if end.max() > excerpt_seconds:
            first = float(rng.uniform(0, end.max() - excerpt_seconds))
        keep = (start >= first) & (start < first + excerpt_seconds)
        n_voices = int(notes[:, 4].max()) + 1
        voice_prog = (
            np.full(n_voices, rng.choice(programs)) if rng.random() < 0.35 else rng.choice(programs, n_voices)
        )
        if mix is not None and mix.source_programs > 0 and notes.shape[1] > 5:
            own = {int(v): int(p) for v, p in notes[~drum][:, 4:6]}
            for v, p in sorted(own.items()):
                if rng.random() < mix.source_programs and p not in banned:
                    voice_prog[v] = p
        base = rng.uniform(45, 110) if augment else 80.0
        vel = np.clip(np.rint(base + rng.normal(0, 8, len(notes))), 15, 127) if augment else notes[:, 3]
        if drum.any():
            scale = rng.uniform(*mix.drum_velocity) if augment else 1.0
            vel = np.where(drum, np.clip(np.rint(notes[:, 3] * scale), 1, 127), vel)
        for i in np.flatnonzero(keep):
            t0 = int(round((cursor + start[i] - first) * TICKS_PER_SECOND))
            t1 = int(round((cursor + min(end[i], first + excerpt_seconds) - first) * TICKS_PER_SECOND))
            if drum[i]:
                track = tracks.setdefault(-1, Track(name="drums", program=kit, is_drum=True))
                track.notes.append(Note(t0, max(1, t1 - t0), int(notes[i, 2]), int(vel[i])))
                continue
            program = int(voice_prog[int(notes[i, 4])])
            track = tracks.setdefault(program, Track(name=f"p{program}", program=program, is_drum=False))
            track.notes.append(Note(t0, max(1, t1 - t0), int(notes[i, 2]) + shift, int(vel[i])))
            labels.append(
                (t0 / TICKS_PER_SECOND, max(t0 + 1, t1) / TICKS_PER_SECOND, notes[i, 2] + shift, vel[i])
            )
        cursor += min(float(end.max()) - first, excerpt_seconds) + (rng.uniform(0.5, 1.5) if augment else 1.0)
    score = Score(TICKS_PER_QUARTER)
    score.tempos.append(Tempo(0, qpm=120.0))
    score.time_signatures.append(TimeSignature(0, 4, 4))
    for program in sorted(tracks):
        score.tracks.append(tracks[program])
    return score, np.array(sorted(labels), dtype=np.float64).reshape(-1, 4)


def piano_roll(notes: np.ndarray, n_frames: int, frames_per_second: float) -> dict[str, np.ndarray]:
    """Piano-roll labels (float32 ``[n_frames, 88]`` per head) of notes ``[start_s, end_s, pitch, vel]``.

    Frame ``t`` is centred at ``t / frames_per_second`` s. A note covers frames ``round(start * fps)`` up to
    (not including) ``round(end * fps)`` (at least one); its offset is the frame ``round(end * fps)``. The
    onset label is split linearly between the two frames around ``start * fps`` (the nearer one gets
    >= 0.5), so that the onset peak also encodes the sub-frame time; velocity (MIDI velocity / 127) is
    set at the nearer frame.
    """
    roll = {h: np.zeros((n_frames, N_KEYS), dtype=np.float32) for h in HEADS}
    for start, end, pitch, vel in notes:
        key, pos = int(pitch) - MIN_MIDI, start * frames_per_second
        on, off = int(round(pos)), max(int(round(pos)) + 1, int(round(end * frames_per_second)))
        if not 0 <= key < N_KEYS or on >= n_frames:
            continue
        first, frac = int(np.floor(pos)), float(pos - np.floor(pos))
        for t, weight in ((first, 1.0 - frac), (first + 1, frac)):
            if t < n_frames:
                roll["onset"][t, key] = max(roll["onset"][t, key], weight)
        roll["frame"][on:off, key] = 1
        roll["velocity"][on, key] = max(roll["velocity"][on, key], vel / 127.0)
        if off < n_frames:
            roll["offset"][off, key] = 1
    return roll


class MedleyPool:
    """Rendered medleys (padded audio + labels) and on-the-fly crops for training batches; with ``mix``
    (an :class:`~notewave.bridge.transcription.augment.Augmentation`) the augmented renders and crops."""

    def __init__(
        self,
        pieces: list[PieceNotes],
        cfg: TranscriberConfig,
        soundfonts: list[Path],
        size: int,
        pieces_per_medley: int = 4,
        excerpt_seconds: float = 30.0,
        mix: Augmentation | None = None,
    ):
        self.pieces, self.cfg, self.soundfonts, self.mix = pieces, cfg, soundfonts, mix
        self.size, self.per, self.excerpt = size, pieces_per_medley, excerpt_seconds
        self.items: list[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]] = []

    def render(
        self,
        rng: np.random.Generator,
        pieces: list[PieceNotes] | None = None,
        augment: bool = True,
        soundfont: Path | None = None,
        programs: Sequence[int] = TRAIN_PROGRAMS,
    ) -> tuple:
        """Render one medley: ``(padded wav float32 [samples + n_fft], labels, notes)``.

        ``augment`` changes tempo, key and velocities; the pool's ``mix`` (effects, synthetic
        instruments, EQ, level, drums) applies either way, so that validation medleys sound like
        training ones.
        """
        from notewave.bridge.render import render_midi

        if pieces is None:
            pieces = [
                self.pieces[i] for i in rng.choice(len(self.pieces), min(self.per, len(self.pieces)), False)
            ]
        score, notes = make_medley(pieces, rng, programs, self.excerpt, augment, self.mix)
        sf = soundfont or self.soundfonts[int(rng.integers(len(self.soundfonts)))]
        effects = medley_effects(rng, self.mix) if self.mix is not None else {}
        if self.mix is not None and self.mix.synth > 0 and rng.random() < self.mix.synth:
            wav = synth_medley(score, rng, self.cfg.sample_rate, sf, effects)
        else:
            wav, _ = render_midi(score, self.cfg.sample_rate, soundfont=sf, tail_seconds=0.5, **effects)
        if self.mix is not None:
            wav = augment_medley(wav[0], rng, self.cfg.sample_rate, self.mix)[None]
        n_frames = 1 + wav.shape[1] // self.cfg.hop_length
        pad = self.cfg.n_fft // 2
        return np.pad(wav[0], (pad, pad)), piano_roll(notes, n_frames, self.cfg.frames_per_second), notes

    def refresh(self, rng: np.random.Generator) -> None:
        """Add a new medley, dropping the oldest when the pool is full."""
        self.items.append(self.render(rng))
        if len(self.items) > self.size:
            self.items.pop(0)

    def batch(self, rng: np.random.Generator, batch_size: int, clip_frames: int) -> tuple[torch.Tensor, dict]:
        """Augmented crops: wav ``[B, (clip_frames - 1) * hop + n_fft]``, labels ``[B, clip_frames, 88]``."""
        hop, n_fft = self.cfg.hop_length, self.cfg.n_fft
        length = (clip_frames - 1) * hop + n_fft
        weights = np.array([len(item[0]) for item in self.items], dtype=np.float64)
        wavs, labels = [], {h: [] for h in HEADS}
        for i in rng.choice(len(self.items), batch_size, p=weights / weights.sum()):
            wav, roll, _ = self.items[i]
            f0 = int(rng.integers(0, max(1, roll["frame"].shape[0] - clip_frames + 1)))
            crop = np.zeros(length, np.float32)
            piece = wav[f0 * hop : f0 * hop + length]
            if self.mix is not None:
                crop[: len(piece)] = piece
                level = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
                wavs.append(augment_crop(crop, rng, level, self.mix)[0])
            else:
                crop[: len(piece)] = piece * np.float32(10 ** (rng.uniform(-18, 8) / 20))
                if rng.random() < 0.5:
                    crop += rng.normal(0, 10 ** (rng.uniform(-75, -40) / 20), length).astype(np.float32)
                wavs.append(np.clip(crop, -1, 1))
            for h in HEADS:
                lab = np.zeros((clip_frames, N_KEYS), np.float32)
                part = roll[h][f0 : f0 + clip_frames]
                lab[: len(part)] = part
                labels[h].append(lab)
        out = {h: torch.from_numpy(np.stack(v)) for h, v in labels.items()}
        return torch.from_numpy(np.stack(wavs)), out


def synth_medley(
    score: Score, rng: np.random.Generator, sample_rate: int, soundfont: Path, effects: dict[str, bool]
) -> np.ndarray:
    """A medley's score (:func:`make_medley`) with its pitched tracks played by random additive-synthesis
    instruments (one :func:`~notewave.bridge.transcription.synth.random_timbre` per track, a synthetic
    room when ``effects["reverb"]``) and its drum tracks rendered by FluidSynth with ``soundfont`` and
    ``effects``, summed: float32 ``[1, samples]`` at ``sample_rate`` Hz."""
    from notewave.bridge.render import render_midi
    from notewave.bridge.transcription.synth import random_timbre, room, synthesize

    pitched = [t for t in score.tracks if not t.is_drum]
    rows = [
        (n.time / TICKS_PER_SECOND, n.end / TICKS_PER_SECOND, n.pitch, n.velocity, v)
        for v, t in enumerate(pitched)
        for n in t.notes
    ]
    table = np.array(rows, dtype=np.float64).reshape(-1, 5)
    timbres = [random_timbre(rng) for _ in pitched]
    wav = synthesize(table[:, :4], table[:, 4].astype(int), timbres, sample_rate, rng)
    if effects.get("reverb"):
        wav = room(wav, rng, sample_rate)
    drums = score.copy()
    drums.tracks = [t for t in drums.tracks if t.is_drum]
    if drums.note_num():
        kit, _ = render_midi(drums, sample_rate, soundfont=soundfont, tail_seconds=0.5, **effects)
        out = np.zeros(max(len(wav), kit.shape[1]), np.float32)
        out[: len(wav)] += wav
        out[: kit.shape[1]] += kit[0]
        wav = out
    return wav[None]


def _soundfonts(names: Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    from notewave.bridge.soundfont import find_soundfont, list_soundfonts

    if names:
        return [find_soundfont(n) for n in names]
    found = list({p.name: p for p in reversed(list_soundfonts()) if p.name in TRAIN_SOUNDFONTS}.values())
    if not found:
        try:
            found = [find_soundfont(None)]
        except SoundfontError as exc:
            raise SoundfontError(f"training renders need a SoundFont: {exc}") from exc
    return found

"""Outputs a user can rely on: same seed, same bytes (across processes); concurrent writers to one
path leave one complete, valid file."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import soundfile as sf
import torch
from symusic import Score

from notewave.cli import main
from notewave.paths import DATA_DIR, JSB_MIDI_DIR, PROJECT_ROOT

PROMPT = JSB_MIDI_DIR / "test" / "jsb_test_010.mid"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def notewave_process(*argv: object, threads: int = 1) -> subprocess.Popen:
    """``python -m notewave.cli ARGV`` in a new process with ``threads`` torch threads."""
    env = {"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "notewave.cli", *map(str, argv)]
    return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_same_seed_gives_byte_identical_midi_and_wav_across_processes(tmp_path, tiny_checkpoint):
    """Byte-identical for the same seed, inputs and torch thread count (float reductions, and so
    the sampled codes, may differ with another thread count)."""
    threads = torch.get_num_threads()
    symbolic = [
        "generate",
        "--prompt",
        PROMPT,
        "--prompt-bars",
        "3",
        "--bars",
        "2",
        "--checkpoint",
        tiny_checkpoint,
    ]
    symbolic += ["--seed", "7"]
    audio = ["generate-audio", "--melody", PROMPT, "--style", "bach", "--seconds", "1.0", "--seed", "7"]
    here, there = tmp_path / "here", tmp_path / "there"
    for folder in (here, there):
        folder.mkdir()
    other = notewave_process(*symbolic, "--out", there / "c.mid", "--wav", there / "c.wav", threads=threads)
    other_audio = notewave_process(*audio, "--out", there / "a.wav", threads=threads)
    assert main([*map(str, symbolic), "--out", str(here / "c.mid"), "--wav", str(here / "c.wav")]) == 0
    assert main([*map(str, audio), "--out", str(here / "a.wav")]) == 0
    for proc in (other, other_audio):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    for name in ("c.mid", "c.wav", "a.wav"):
        assert digest(here / name) == digest(there / name), name
    assert Score(str(here / "c.mid")).note_num() > Score(str(PROMPT)).clip(0, 3 * 4 * 480).note_num()
    assert sf.info(str(here / "a.wav")).frames == 32000
    # another seed gives other music
    assert main([*map(str, symbolic[:-1]), "8", "--out", str(here / "d.mid")]) == 0
    assert digest(here / "d.mid") != digest(here / "c.mid")


def test_two_processes_writing_one_path_leave_one_complete_file(tmp_path, tiny_checkpoint):
    """Two renders of different pieces race to the same WAV and two continuations to the same MIDI:
    the survivor is byte-identical to one of the writers' outputs, never a mix or a stub."""
    pieces = [JSB_MIDI_DIR / "test" / f"jsb_test_{i:03d}.mid" for i in (1, 2)]
    reference = []
    for i, piece in enumerate(pieces):
        assert main(["render", str(piece), str(tmp_path / f"ref{i}.wav"), "--sample-rate", "16000"]) == 0
        reference.append(digest(tmp_path / f"ref{i}.wav"))
    for _ in range(2):
        target = tmp_path / "race.wav"
        procs = [notewave_process("render", p, target, "--sample-rate", "16000") for p in pieces]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()[-2000:]
        assert digest(target) in reference
        assert sf.info(str(target)).frames > 16000
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    args = [
        "generate",
        "--prompt",
        PROMPT,
        "--prompt-bars",
        "2",
        "--bars",
        "1",
        "--checkpoint",
        tiny_checkpoint,
        "--out",
        tmp_path / "race.mid",
    ]
    procs = [notewave_process(*args, "--seed", str(seed)) for seed in (1, 2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    survivor = Score(str(tmp_path / "race.mid"))
    assert survivor.note_num() > 0 and len(survivor.tracks) == len(Score(str(PROMPT)).tracks)
    assert DATA_DIR.is_dir()

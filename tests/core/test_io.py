import shutil
from pathlib import Path

import pytest

from notewave.core.io import atomic_path, find_files
from notewave.errors import DataError


def test_find_files_skips_leftovers_of_interrupted_atomic_writes(jsb_test_files: list[Path], tmp_path: Path):
    for f in jsb_test_files[:2]:
        shutil.copy(f, tmp_path / f.name.upper())  # suffixes match in any case
    (tmp_path / ".jsb_test_009.mid.x1y2.tmp.mid").write_bytes(b"")  # what a killed writer leaves
    (tmp_path / ".cache").mkdir()
    shutil.copy(jsb_test_files[2], tmp_path / ".cache" / "hidden.mid")
    (tmp_path / "notes.txt").write_text("not MIDI")
    found = find_files(tmp_path, {".mid"}, kind="MIDI")
    assert [p.name for p in found] == sorted(f.name.upper() for f in jsb_test_files[:2])
    with pytest.raises(DataError, match="no MIDI files"):
        find_files(tmp_path / ".cache", {".wav"}, kind="MIDI")
    with pytest.raises(DataError, match="not found"):
        find_files(tmp_path / "missing", {".mid"})


def test_atomic_path_leaves_nothing_behind_on_failure(tmp_path: Path):
    target = tmp_path / "out.mid"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            Path(tmp).write_bytes(b"partial")
            raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []

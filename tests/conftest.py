"""Shared fixtures: the shipped real data, real MIDI from installed packages and small real models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from notewave.paths import DEFAULT_SYMBOLIC_CHECKPOINT, JSB_MIDI_DIR, PROJECT_ROOT

SHARED_JSB_JSON = PROJECT_ROOT.parent / "shared" / "data" / "jsb_chorales" / "Jsb16thSeparated.json"
TINY_STYLES = ["bach", "jazz"]


@pytest.fixture(scope="session")
def jsb_test_files() -> list[Path]:
    """The 77 shipped JSB test-split chorales (real Bach, converted by `notewave data jsb`)."""
    files = sorted((JSB_MIDI_DIR / "test").glob("*.mid"))
    assert len(files) == 77, "the shipped test split is missing: run `notewave data jsb --splits test`"
    return files


@pytest.fixture
def jsb_split_folder(tmp_path: Path) -> Path:
    """A MIDI folder of three real JSB chorales split as the trainers read it: ``train/`` (2) and
    ``valid/`` (1), from the JSB training split when present (else the test split, for runs whose
    weights are discarded)."""
    split = JSB_MIDI_DIR / "train" if (JSB_MIDI_DIR / "train").is_dir() else JSB_MIDI_DIR / "test"
    files = sorted(split.glob("*.mid"))[:3]
    data = tmp_path / "data"
    for sub, chosen in (("train", files[:2]), ("valid", files[2:])):
        (data / sub).mkdir(parents=True)
        for f in chosen:
            shutil.copy(f, data / sub / f.name)
    return data


@pytest.fixture(scope="session")
def composer_model():
    """The shipped composer (``data/checkpoints/composer``); skipped until it is shipped."""
    if not (DEFAULT_SYMBOLIC_CHECKPOINT / "config.json").is_file():
        pytest.skip(f"the composer checkpoint is not shipped yet ({DEFAULT_SYMBOLIC_CHECKPOINT}/config.json)")
    from notewave.pipelines.composer import Composer

    return Composer.from_pretrained()


@pytest.fixture(scope="session")
def tiny_model():
    """An untrained tiny MIDI LM (context 256 tokens) with the multitrack vocabulary of the styles
    ``bach`` and ``jazz``, as a Composer. Seeded: the same weights in every session. Its samples are
    close to uniform over what the grammar allows, so they test the mechanics, not the music."""
    import torch

    from notewave.pipelines.composer import Composer
    from notewave.symbolic.model import MidiLM, config_for
    from notewave.symbolic.vocab import Vocab

    vocab = Vocab(TINY_STYLES)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = MidiLM(config_for("tiny", vocab)).eval()
    torch.random.set_rng_state(generator_state)
    return Composer(model, vocab)


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model, tmp_path_factory) -> Path:
    """``tiny_model`` saved as a checkpoint folder (for the CLI's ``--checkpoint``)."""
    return tiny_model.save_pretrained(tmp_path_factory.mktemp("tiny") / "composer")


@pytest.fixture(scope="session")
def freedoom_dir(tmp_path_factory) -> Path:
    """Freedoom's 66 MIDI pieces (game music with drums, 3/4, 6/8, 7/4 and up to 16 tracks),
    exported from the Debian package into ``<dir>/<split>/*.mid``."""
    from notewave.symbolic.sources import FREEDOOM_WADS, export_freedoom

    if not all(path.is_file() for path in FREEDOOM_WADS):
        pytest.skip("freedoom is not installed (apt-get install freedoom)")
    out = tmp_path_factory.mktemp("freedoom")
    export_freedoom(out, progress=False)
    return out


@pytest.fixture(scope="session")
def freedoom_piece(freedoom_dir):
    """Path of one exported Freedoom piece by its lump name, e.g. ``freedoom_piece("freedoom2_D_ADRIAN")``."""

    def find(stem: str) -> Path:
        found = sorted(freedoom_dir.glob(f"*/{stem}.mid"))
        assert found, f"{stem}.mid is not among the exported Freedoom pieces"
        return found[0]

    return find


@pytest.fixture(scope="session")
def mma_dir(tmp_path_factory) -> Path:
    """Three MMA library grooves (rock with drums, a 6/8 march) rendered by the Debian package."""
    from notewave.symbolic.sources import export_mma
    from notewave.symbolic.sources import mma as mma_module

    if shutil.which("mma") is None or not mma_module.MMA_LIBRARY.is_dir():
        pytest.skip("mma is not installed (apt-get install mma)")
    out = tmp_path_factory.mktemp("mma")
    export_mma(out, limit=3, jobs=1, examples=False, progress=False)
    return out


@pytest.fixture(scope="session")
def mma_groove(tmp_path_factory):
    """An MMA library groove rendered to MIDI by name, as ``notewave data mma`` renders it, e.g.
    ``mma_groove("FolkBallad1SusPlus")`` (cached per session)."""
    from notewave.symbolic.sources import mma as mma_module

    if shutil.which("mma") is None or not mma_module.MMA_LIBRARY.is_dir():
        pytest.skip("mma is not installed (apt-get install mma)")
    folder = tmp_path_factory.mktemp("mma_grooves")

    def render(name: str) -> Path:
        path = folder / f"mma_{name}.mid"
        if not path.is_file():
            song, _ = mma_module.groove_song(name)
            path.write_bytes(mma_module.render_song(song, folder / "cache", name))
        return path

    return render


@pytest.fixture(scope="session")
def music21_midi(tmp_path_factory):
    """A music21 corpus piece written as MIDI, by corpus name (cached per session), e.g.
    ``music21_midi("bach/bwv269")`` (3/4 with a one-beat pickup) or
    ``music21_midi("ryansMammoth/LanigansBallJig")`` (6/8 with an eighth-note pickup)."""
    folder = tmp_path_factory.mktemp("music21")
    written: dict[str, Path] = {}

    def write(name: str) -> Path:
        if name not in written:
            from music21 import corpus

            path = folder / (name.replace("/", "_") + ".mid")
            corpus.parse(name).write("midi", fp=str(path))
            written[name] = path
        return written[name]

    return write


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzz counts (cases, accepted, rejected cleanly) per input kind, when any case ran.

    Read from ``$NOTEWAVE_FUZZ_REPORT`` (written by every worker process) or, without it, from
    this process's counter.
    """
    import json
    import os
    from collections import Counter

    from tests.reliability.harness import COUNTS

    counts: Counter[tuple[str, str]] = Counter()
    folder = os.environ.get("NOTEWAVE_FUZZ_REPORT")
    if folder and Path(folder).is_dir():
        for path in Path(folder).glob("counts-*.jsonl"):
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                counts[(row["kind"], row["outcome"])] += 1
    else:
        counts = COUNTS
    if not counts:
        return
    kinds = sorted({kind for kind, _ in counts})
    write = terminalreporter.write_line
    write("")
    write("fuzz cases (every one ended in success or a one-line NotewaveError naming the input):")
    write(f"{'input / entry point':60s} {'cases':>7s} {'accepted':>9s} {'rejected':>9s}")
    for kind in kinds:
        a, r = counts[(kind, "accepted")], counts[(kind, "rejected")]
        write(f"{kind:60s} {a + r:7d} {a:9d} {r:9d}")
    total_a = sum(v for (_, o), v in counts.items() if o == "accepted")
    total_r = sum(v for (_, o), v in counts.items() if o == "rejected")
    write(f"{'total':60s} {total_a + total_r:7d} {total_a:9d} {total_r:9d}")

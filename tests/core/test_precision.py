import time
import warnings

import pytest
import torch

from notewave.core import precision
from notewave.core.distributed import Distributed
from notewave.core.precision import (
    bf16_native,
    cpu_probe_speedup,
    describe_precision,
    resolve_precision,
)
from notewave.core.train import TrainConfig, Trainer
from notewave.errors import ConfigError


def _capability(monkeypatch, value: str) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: value)


def _no_probe(monkeypatch) -> None:
    def fail() -> float:
        raise AssertionError("the probe must not run for an unambiguous capability")

    monkeypatch.setattr(precision, "cpu_probe_speedup", fail)


def _single_thread_speedup() -> float:
    """fp32 time / bf16-autocast time of a 512x512 matmul on one thread (best of 7)."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = {}
        for bf16 in (False, True):
            times = []
            for _ in range(8):
                start = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    a @ b
                times.append(time.perf_counter() - start)
            best[bf16] = min(times[1:])
    finally:
        torch.set_num_threads(threads)
    return best[False] / best[True]


def test_auto_on_this_machine_never_picks_a_slower_bf16():
    """Real behaviour: auto gives bf16 exactly when this CPU runs it natively, and an
    independent measurement agrees (an AVX2 CPU gets fp32 without a probe)."""
    capability = torch.backends.cpu.get_cpu_capability()
    choice = resolve_precision("auto", "cpu")
    assert choice == ("bf16" if bf16_native("cpu") else "fp32")
    assert choice == resolve_precision("auto", torch.device("cpu"))  # cached, same answer
    if capability in ("AVX2", "DEFAULT", "NO AVX"):
        assert choice == "fp32"
    speedup = _single_thread_speedup()
    if speedup < 1.0:  # bf16 slower here: auto must not pick it
        assert choice == "fp32", (capability, speedup)
    if speedup > 2.0 and capability == "AVX512":  # clearly native (AMX / AVX512_BF16)
        assert choice == "bf16", (capability, speedup)
    line = describe_precision("cpu")
    assert capability in line and f"auto -> {choice}" in line and "\n" not in line


def test_explicit_bf16_without_native_support_warns_and_uses_fp32(monkeypatch):
    _capability(monkeypatch, "AVX2")
    _no_probe(monkeypatch)
    with pytest.warns(UserWarning, match=r"bf16 requested but cpu AVX2.*no native bf16.*training in fp32"):
        assert resolve_precision("bf16", "cpu") == "fp32"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("auto", "cpu") == "fp32"
        assert resolve_precision("fp32", "cpu") == "fp32"
    assert describe_precision("cpu", "bf16").endswith("precision bf16 -> fp32")


def test_ambiguous_capability_follows_the_measured_probe(monkeypatch):
    _capability(monkeypatch, "AVX512")
    monkeypatch.setattr(precision, "cpu_probe_speedup", lambda: 0.3)  # emulated bf16
    assert resolve_precision("auto", "cpu") == "fp32"
    with pytest.warns(UserWarning, match="training in fp32"):
        assert resolve_precision("bf16", "cpu") == "fp32"
    monkeypatch.setattr(precision, "cpu_probe_speedup", lambda: 3.0)  # AMX
    assert resolve_precision("auto", "cpu") == "bf16"


@pytest.mark.parametrize("capability", ["AMX", "AVX512_BF16", "avx512_bf16"])
def test_native_capability_gives_bf16_without_probe(monkeypatch, capability):
    _capability(monkeypatch, capability)
    _no_probe(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("auto", "cpu") == "bf16"
        assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("fp32", "cpu") == "fp32"


def test_cuda_follows_is_bf16_supported(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "cuda") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.warns(UserWarning, match="training in fp32"):
        assert resolve_precision("bf16", "cuda:0") == "fp32"


def test_unknown_precision_raises_config_error():
    for bad in ("fp16", "BF16", ""):
        with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16"):
            resolve_precision(bad, "cpu")
    with pytest.raises(ConfigError, match="precision must be one of"):
        TrainConfig(precision="half")
    with pytest.raises(ConfigError, match="precision must be one of"):
        describe_precision("cpu", "half")


def test_probe_is_cached_per_process():
    first = cpu_probe_speedup()
    start = time.perf_counter()
    assert cpu_probe_speedup() == first
    assert time.perf_counter() - start < 0.01


def test_trainer_resolves_once_and_records_precision(tmp_path, monkeypatch):
    _capability(monkeypatch, "AVX2")
    model = torch.nn.Linear(4, 1)
    data = torch.randn(8, 4)

    def loss_fn(forward, batch):
        return forward(batch).float().pow(2).mean()

    def save_fn(m, folder, extra, info):
        from notewave.core.checkpoint import write_checkpoint

        write_checkpoint(folder, m.state_dict(), {"training": info}, extra=extra)

    cfg = TrainConfig(steps=2, batch_size=8, warmup=0, eval_every=2, save_every=2, precision="bf16")
    with pytest.warns(UserWarning, match="training in fp32"):
        trainer = Trainer(model, cfg, tmp_path, lambda g: data, loss_fn, lambda m: {}, save_fn, Distributed())
    assert trainer.precision == "fp32" and trainer.capability.startswith("cpu AVX2")
    result = trainer.fit()
    assert result["precision"] == "fp32" and result["capability"] == trainer.capability
    from notewave.core.checkpoint import read_checkpoint

    _, config = read_checkpoint(tmp_path / "last")
    assert config["training"]["precision"] == "fp32"
    assert config["training"]["train_config"]["precision"] == "bf16"  # what was asked for
    assert '"precision": "fp32"' in (tmp_path / "log.jsonl").read_text()

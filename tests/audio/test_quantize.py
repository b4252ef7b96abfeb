import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from notewave.audio.codec.quantize import ResidualVectorQuantizer, VectorQuantizer, codebook_usage
from notewave.errors import ConfigError


def buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_kmeans_init_places_codes_on_clusters():
    torch.manual_seed(0)
    centers = torch.randn(8, 4) * 10
    points = centers.repeat_interleave(40, 0) + 0.01 * torch.randn(320, 4)
    latents = points.T.unsqueeze(0)  # [1, 4, 320]
    vq = VectorQuantizer(4, 8).train()
    assert not bool(vq.initialized)
    quantized, codes, loss = vq(latents)
    assert bool(vq.initialized)
    assert float(loss) < 1e-3  # noise variance is 1e-4
    assert torch.allclose(quantized, latents, atol=0.1)
    per_cluster = codes.view(8, 40)
    assert (per_cluster == per_cluster[:, :1]).all() and len(per_cluster[:, 0].unique()) == 8


def test_kmeans_init_with_fewer_vectors_than_codes():
    torch.manual_seed(0)
    latents = torch.randn(1, 4, 5)
    vq = VectorQuantizer(4, 16, dead_code_threshold=0).train()
    vq(latents)
    distances = torch.cdist(vq.codebook, latents[0].T)  # [16 codes, 5 vectors]
    assert distances.min(1).values.max() < 1e-4
    assert float(vq.eval()(latents)[2]) < 1e-8


def test_ema_update_matches_analytic_formula():
    vq = VectorQuantizer(2, 2, decay=0.9, epsilon=1e-5, kmeans_init=False, dead_code_threshold=0).train()
    start = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    vq.codebook.copy_(start)
    vq.embed_sum.copy_(start)
    vq.cluster_size.fill_(1.0)
    points = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [9.0, 9.0]])
    _, codes, _ = vq(points.T.unsqueeze(0))
    assert codes.tolist() == [[0, 0, 0, 1]]
    size = 0.9 * torch.ones(2) + 0.1 * torch.tensor([3.0, 1.0])
    total_sum = 0.9 * start + 0.1 * torch.stack([points[:3].sum(0), points[3]])
    smoothed = (size + 1e-5) / (size.sum() + 2e-5) * size.sum()
    torch.testing.assert_close(vq.cluster_size, size)
    torch.testing.assert_close(vq.codebook, total_sum / smoothed[:, None])
    mean0 = points[:3].mean(0)
    assert (vq.codebook[0] - mean0).norm() < (start[0] - mean0).norm()
    for _ in range(200):  # the EMA converges to the mean of the assigned vectors
        vq(points.T.unsqueeze(0))
    torch.testing.assert_close(vq.codebook, torch.stack([mean0, points[3]]), atol=1e-3, rtol=0)


def test_dead_code_is_restarted_on_a_batch_vector():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 8, decay=0.9, kmeans_init=False, dead_code_threshold=0.5).train()
    vq.codebook[7] = 100.0
    vq.embed_sum[7] = 100.0
    for _ in range(6):  # cluster size 0.9**6 = 0.53 >= 0.5: still alive
        vq(torch.randn(2, 4, 16))
        assert (vq.codebook[7] > 99.9).all()
    batch = torch.randn(2, 4, 16)
    vq(batch)  # 0.9**7 = 0.48 < 0.5: restarted
    vectors = batch.transpose(1, 2).reshape(-1, 4)
    assert (vectors == vq.codebook[7]).all(1).any()
    assert float(vq.cluster_size[7]) == 0.5


def test_quantizer_dropout_varies_n_q_in_training_only():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(8, 4, 16, quantizer_dropout=True).train()
    x = torch.randn(2, 8, 10)
    used = set()
    for _ in range(50):
        out = rvq(x)
        assert out.codes.shape[1] == out.perplexity.shape[0]
        used.add(out.codes.shape[1])
    assert len(used) >= 2 and used <= {1, 2, 3, 4}
    assert rvq(x, n_q=3).codes.shape[1] == 3  # an explicit n_q wins over dropout
    rvq.eval()
    assert all(rvq(x).codes.shape == (2, 4, 10) for _ in range(10))


def test_residual_error_decreases_with_more_codebooks():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(8, 4, 16, decay=0.8).train()
    x = torch.randn(4, 8, 32)
    for _ in range(10):
        rvq(x)
    rvq.eval()
    errors = [float((rvq.decode(rvq.encode(x, n)) - x).pow(2).mean()) for n in range(1, 5)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[0] < float(x.pow(2).mean())


def test_encode_decode_match_forward_in_eval_and_do_not_update():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(8, 3, 16)
    x = torch.randn(2, 8, 20)
    rvq.train()(x)
    before = buffers(rvq)
    codes = rvq.encode(x)  # never updates, even in training mode
    rvq.eval()
    out = rvq(x)
    for name, value in rvq.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert codes.dtype == torch.int64 and codes.shape == (2, 3, 20)
    assert torch.equal(out.codes, codes)
    torch.testing.assert_close(rvq.decode(codes), out.quantized, atol=1e-5, rtol=0)
    assert rvq.decode(codes[:, :1]).shape == (2, 8, 20)  # coarser reconstruction
    for k, layer in enumerate(rvq.layers):
        assert layer.decode(codes[:, k]).shape == (2, 8, 20)


def test_straight_through_gradient_reaches_input():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(8, 3, 16).train()
    x = torch.randn(2, 8, 12, requires_grad=True)
    out = rvq(x)
    out.quantized.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))
    x.grad = None
    rvq(x).commit_loss.backward()
    assert x.grad.abs().sum() > 0


def test_autocast_keeps_dtype_and_float32_codes():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(8, 2, 16)
    x = torch.randn(2, 8, 12)
    rvq.train()(x)
    rvq.eval()
    half = x.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = rvq(half)
    assert out.quantized.dtype == torch.bfloat16 and out.commit_loss.dtype == torch.float32
    assert torch.equal(out.codes, rvq.encode(half.float()))


def test_state_dict_roundtrip_through_safetensors(tmp_path):
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(8, 3, 16).train()
    x = torch.randn(2, 8, 20)
    for _ in range(3):
        rvq(x)
    save_file(rvq.state_dict(), str(tmp_path / "q.safetensors"))
    fresh = ResidualVectorQuantizer(8, 3, 16)
    assert not bool(fresh.layers[0].initialized)
    fresh.load_state_dict(load_file(str(tmp_path / "q.safetensors")))
    assert all(bool(layer.initialized) for layer in fresh.layers)
    assert torch.equal(fresh.encode(x), rvq.encode(x))
    for model in (fresh, rvq):  # training resumes identically (no second k-means)
        torch.manual_seed(1)
        model.train()(x)
    for name, value in rvq.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name


def test_invalid_codes_and_options_raise():
    rvq = ResidualVectorQuantizer(8, 4, 16)
    with pytest.raises(ConfigError, match="from -1 to 3"):
        rvq.decode(torch.tensor([[[-1, 3]]]))
    with pytest.raises(ConfigError, match=r"\[0, 16\).*to 16"):
        rvq.decode(torch.tensor([[[0, 16]]]))
    with pytest.raises(ConfigError, match="5 codebooks"):
        rvq.decode(torch.zeros(1, 5, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match="integer"):
        rvq.decode(torch.zeros(1, 2, 3))
    with pytest.raises(ConfigError, match="n_q"):
        rvq.encode(torch.randn(1, 8, 3), n_q=5)
    with pytest.raises(ConfigError, match=r"\[B, 8, T\]"):
        rvq(torch.randn(1, 7, 3))
    with pytest.raises(ConfigError, match="from 0 to 9"):
        VectorQuantizer(4, 8).decode(torch.tensor([[0, 9]]))
    with pytest.raises(ConfigError, match="quantizer_dropout"):
        ResidualVectorQuantizer(8, 4, 16, quantizer_dropout=1.5)
    with pytest.raises(ConfigError, match="decay"):
        VectorQuantizer(4, 8, decay=1.0)


def test_bitrate_and_codebook_usage():
    rvq = ResidualVectorQuantizer(8, 8, 1024)
    assert rvq.bitrate(75) == 6000.0
    assert rvq.bitrate(75, n_q=2) == 1500.0
    assert ResidualVectorQuantizer(4, 4, 16).bitrate(50.5) == 4 * 50.5 * math.log2(16)
    with pytest.raises(ConfigError, match="frame_rate"):
        rvq.bitrate(0)
    codes = torch.stack([torch.arange(8) % 4, torch.zeros(8, dtype=torch.long)]).unsqueeze(0)
    usage = codebook_usage(codes, 4)
    assert usage["perplexity"] == pytest.approx([4.0, 1.0])
    assert usage["dead_share"] == pytest.approx([0.0, 0.75])
    assert ResidualVectorQuantizer(4, 2, 4).codebook_usage(codes) == usage


def _ddp_worker(rank: int, world: int, store: str, out: str) -> None:
    """Two gloo processes, each quantizing its own half of a batch (see the test below)."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        data = torch.Generator().manual_seed(7)
        batches = [torch.randn(2 * world, 8, 12, generator=data) for _ in range(4)]
        own = [b[2 * rank : 2 * rank + 2] for b in batches]
        torch.manual_seed(0)  # same random codebooks on both ranks, no k-means, no restarts
        ema = VectorQuantizer(8, 16, kmeans_init=False, dead_code_threshold=0).train()
        torch.manual_seed(100 + rank)  # ranks draw different restart vectors and dropout n_q
        rvq = ResidualVectorQuantizer(8, 3, 16, quantizer_dropout=1.0, dead_code_threshold=5.0).train()
        used = []
        for x in own:
            ema(x)
            used.append(rvq(x).codes.shape[1])
        save_file(
            {**{f"ema.{k}": v for k, v in buffers(ema).items() if k != "initialized"}}
            | {f"rvq.{k}": v for k, v in buffers(rvq).items() if not k.endswith("initialized")}
            | {"used": torch.tensor(used)},
            f"{out}/rank{rank}.safetensors",
        )
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_share_codebooks_and_global_ema_statistics(tmp_path):
    """Under torch.distributed the EMA statistics are summed over ranks (so two ranks equal one
    process on the whole batch), and k-means init, dead-code restarts and quantizer dropout agree."""
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    data = torch.Generator().manual_seed(7)
    batches = [torch.randn(4, 8, 12, generator=data) for _ in range(4)]
    torch.manual_seed(0)
    single = VectorQuantizer(8, 16, kmeans_init=False, dead_code_threshold=0).train()
    for x in batches:
        single(x)
    for key, value in buffers(single).items():
        if key != "initialized":
            assert torch.allclose(ranks[0][f"ema.{key}"], value, atol=1e-5), key

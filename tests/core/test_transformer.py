import pytest
import torch

from notewave.core.transformer import Transformer, TransformerConfig
from notewave.errors import ConfigError


def small() -> Transformer:
    torch.manual_seed(0)
    return Transformer(
        TransformerConfig(d_model=32, n_layers=2, n_heads=4, max_seq_len=40, dropout=0.0)
    ).eval()


def test_kv_cache_matches_full_forward():
    model = small()
    x = torch.randn(2, 30, 32)
    with torch.no_grad():
        full = model(x)
        cache = model.new_cache(2)
        parts = [model(x[:, :12], cache)]  # prefill
        parts += [model(x[:, t : t + 1], cache) for t in range(12, 20)]  # one step at a time
        parts.append(model(x[:, 20:], cache))  # a chunk after cached positions
    assert cache.length == 30
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-4)


def test_causal_future_does_not_change_past():
    model = small()
    x = torch.randn(1, 20, 32)
    y = x.clone()
    y[:, 10:] = torch.randn(1, 10, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:, :10], model(y)[:, :10])
        assert not torch.allclose(model(x)[:, 10:], model(y)[:, 10:])


def test_context_overflow_and_bad_config_raise():
    model = small()
    with pytest.raises(ConfigError, match="exceeds the model context"):
        model(torch.randn(1, 41, 32))
    with pytest.raises(ConfigError, match="divisible"):
        TransformerConfig(d_model=30, n_heads=4)
    with pytest.raises(ConfigError, match="unknown transformer config"):
        TransformerConfig.from_dict({"d_model": 32, "heads": 2})

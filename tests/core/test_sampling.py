import pytest
import torch

from notewave.core.sampling import filter_logits, sample
from notewave.errors import ConfigError


def test_top_k_and_top_p_keep_the_right_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [[True, True, False, False]]
    # 0.5 + 0.3 reaches 0.8: the third token is dropped at p=0.8, kept at p=0.85
    assert torch.isfinite(filter_logits(logits, top_p=0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.85)).tolist() == [[True, True, True, False]]


def test_mask_is_applied_before_top_k():
    logits = torch.tensor([[5.0, 4.0, 3.0, 2.0]])
    allowed = torch.tensor([[False, False, True, True]])
    draws = {int(sample(logits, top_k=1, allowed=allowed)) for _ in range(20)}
    assert draws == {2}
    with pytest.raises(ConfigError, match="allows no token"):
        sample(logits, allowed=torch.zeros(1, 4, dtype=torch.bool))


def test_seeded_draws_repeat_and_temperature_sharpens():
    logits = torch.randn(1, 50, generator=torch.Generator().manual_seed(0))
    logits[0, 7] = logits.max() + 0.5  # a clear favourite: at T=0.01 the runner-up has odds e^-50
    a = [int(sample(logits, generator=torch.Generator().manual_seed(3))) for _ in range(3)]
    assert len(set(a)) == 1
    cold = [
        int(sample(logits, temperature=0.01, generator=torch.Generator().manual_seed(s))) for s in range(10)
    ]
    assert set(cold) == {int(logits.argmax())}
    for bad in ({"temperature": 0}, {"top_k": 0}, {"top_p": 1.5}):
        with pytest.raises(ConfigError):
            sample(logits, **bad)

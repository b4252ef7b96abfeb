import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from notewave.audio.lm.patterns import PATTERNS, get_pattern
from notewave.errors import ConfigError

SPECIAL = 1024


def expected_steps(name: str, k: int, t: int) -> int:
    return {"parallel": t, "delay": t + k - 1, "flatten": t * k, "coarse_first": 2 * t if k > 1 else t}[name]


cases = st.tuples(
    st.sampled_from(PATTERNS),
    st.integers(1, 3),  # B
    st.integers(1, 8),  # K
    st.integers(1, 50),  # T
    st.integers(0, 2**31 - 1),  # seed
)


@settings(max_examples=60, deadline=None)
@given(cases)
def test_build_revert_roundtrip_and_layout_invariants(case):
    name, b, k, t, seed = case
    pattern = get_pattern(name, k)
    codes = torch.randint(0, SPECIAL, (b, k, t), generator=torch.Generator().manual_seed(seed))
    seq, mask = pattern.build(codes, SPECIAL)
    s = expected_steps(name, k, t)
    assert pattern.num_steps(t) == s
    assert seq.shape == (b, k, s) and seq.dtype == torch.int64
    assert mask.shape == (k, s) and mask.dtype == torch.bool
    assert int(mask.sum()) == k * t
    # special tokens exactly where the mask is False
    assert torch.equal(seq == SPECIAL, ~mask.expand(b, -1, -1))
    assert torch.equal(pattern.revert(seq, t), codes)
    # every (k, t) appears exactly once, and the layout agrees with build
    layout = pattern.step_positions(t)
    assert torch.equal(layout >= 0, mask)
    for book in range(k):
        held = layout[book][layout[book] >= 0]
        assert torch.equal(held.sort().values, torch.arange(t))
        assert torch.equal(seq[:, book, mask[book]], codes[:, book, held])
    positions = pattern.frame_positions(t)
    assert torch.equal(layout.gather(1, positions), torch.arange(t).expand(k, -1))


@settings(max_examples=30, deadline=None)
@given(cases)
def test_generation_helpers_agree_with_layout(case):
    name, _, k, t, _ = case
    pattern = get_pattern(name, k)
    layout = pattern.step_positions(t)
    seen = torch.zeros(k, t, dtype=torch.bool)
    previous = 0
    for s in range(pattern.num_steps(t)):
        assert torch.equal(pattern.frame_at(s, t), layout[:, s])
        assert torch.equal(pattern.valid_at(s, t), layout[:, s] >= 0)
        for book in torch.nonzero(pattern.valid_at(s, t)).flatten().tolist():
            seen[book, layout[book, s]] = True
        done = pattern.frames_done(s, t)
        assert done >= previous
        complete = seen.all(dim=0)
        assert complete[:done].all() and (done == t or not complete[done])
        previous = done
    assert previous == t


def test_delay_hand_example():
    pattern = get_pattern("delay", 3)
    codes = torch.tensor([[[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]])
    seq, mask = pattern.build(codes, -1)
    assert seq.tolist() == [[[1, 2, 3, 4, -1, -1], [-1, 5, 6, 7, 8, -1], [-1, -1, 9, 10, 11, 12]]]
    assert mask.tolist() == [
        [True, True, True, True, False, False],
        [False, True, True, True, True, False],
        [False, False, True, True, True, True],
    ]
    assert pattern.valid_at(0, 4).tolist() == [True, False, False]
    assert pattern.frame_at(4, 4).tolist() == [-1, 3, 2]
    assert [pattern.frames_done(s, 4) for s in range(6)] == [0, 0, 1, 2, 3, 4]


def test_flatten_and_coarse_first_hand_examples():
    codes = torch.tensor([[[1, 2], [3, 4]]])
    seq, _ = get_pattern("flatten", 2).build(codes, 0)
    assert seq.tolist() == [[[1, 0, 2, 0], [0, 3, 0, 4]]]
    seq, _ = get_pattern("coarse_first", 2).build(codes, 0)
    assert seq.tolist() == [[[1, 2, 0, 0], [0, 0, 3, 4]]]
    seq, _ = get_pattern("parallel", 2).build(codes, 0)
    assert seq.tolist() == codes.tolist()


def test_revert_ignores_special_positions():
    pattern = get_pattern("delay", 4)
    codes = torch.randint(0, 10, (2, 4, 7))
    seq, mask = pattern.build(codes, 10)
    seq = seq.masked_fill(~mask, 99)
    assert torch.equal(pattern.revert(seq, 7), codes)


def test_errors():
    with pytest.raises(ConfigError, match="parallel, delay, flatten, coarse_first"):
        get_pattern("zigzag", 4)
    with pytest.raises(ConfigError, match="num_codebooks"):
        get_pattern("delay", 0)
    pattern = get_pattern("delay", 4)
    with pytest.raises(ConfigError, match="3 codebooks"):
        pattern.build(torch.zeros(1, 3, 5, dtype=torch.long), 9)
    with pytest.raises(ConfigError, match="integer"):
        pattern.build(torch.zeros(1, 4, 5), 9)
    with pytest.raises(ConfigError, match=r"\[B, K, T\]"):
        pattern.build(torch.zeros(4, 5, dtype=torch.long), 9)
    with pytest.raises(ConfigError, match="special token id 9"):
        pattern.build(torch.full((1, 4, 5), 9), 9)
    with pytest.raises(ConfigError, match="needs 8 steps"):
        pattern.revert(torch.zeros(1, 4, 6, dtype=torch.long), 5)
    with pytest.raises(ConfigError, match="frames"):
        pattern.num_steps(0)
    with pytest.raises(ConfigError, match="step"):
        pattern.valid_at(8, 5)

"""TCA similarity functions against naive float64 references (METHODS.md §1.3)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidtempo.modeling import chamfer_similarity, cosine_similarity, symmetric_chamfer_similarity


def naive_chamfer(x: list[list[float]], y: list[list[float]]) -> float:
    """(1/n) Σ_i max_j x_i·y_j with plain Python floats (double precision), one pair at a time."""
    total = 0.0
    for xi in x:
        total += max(sum(a * b for a, b in zip(xi, yj)) for yj in y)
    return total / len(x)


def valid_frames(frames: torch.Tensor, mask: torch.Tensor | None, index: int) -> list[list[float]]:
    rows = frames[index].double().tolist()
    if mask is None:
        return rows
    return [row for row, keep in zip(rows, mask[index].tolist()) if keep]


def naive_matrix(q, q_mask, d, d_mask, symmetric: bool) -> torch.Tensor:
    out = torch.empty(q.shape[0], d.shape[0], dtype=torch.float64)
    for i in range(q.shape[0]):
        for j in range(d.shape[0]):
            x, y = valid_frames(q, q_mask, i), valid_frames(d, d_mask, j)
            value = naive_chamfer(x, y)
            if symmetric:
                value = (value + naive_chamfer(y, x)) / 2
            out[i, j] = value
    return out


def ragged_batch(num_videos: int, max_frames: int, dim: int, generator: torch.Generator):
    """Random unit-norm frames with random lengths in [1, max_frames]; padding filled with large junk."""
    frames = torch.nn.functional.normalize(
        torch.randn(num_videos, max_frames, dim, generator=generator), dim=-1
    )
    lengths = torch.randint(1, max_frames + 1, (num_videos,), generator=generator)
    lengths[0] = max_frames  # at least one full video
    mask = torch.arange(max_frames)[None] < lengths[:, None]  # [N, F]
    # Junk at padded positions: wins every max if the mask were ignored.
    frames = torch.where(mask[..., None], frames, torch.full_like(frames, 5.0))
    return frames, mask.long()


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("chunk_bytes", [256 * 2**20, 1, 700])
def test_chamfer_matches_naive_loop_with_masks_and_chunks(symmetric, chunk_bytes):
    generator = torch.Generator().manual_seed(1)
    q, q_mask = ragged_batch(3, 5, 8, generator)
    d, d_mask = ragged_batch(7, 6, 8, generator)
    function = symmetric_chamfer_similarity if symmetric else chamfer_similarity
    # chunk_bytes=1 forces one database video per chunk, 700 bytes gives chunks of 2 (3*5*6*4 = 360 B/video).
    got = function(q, q_mask, d, d_mask, chunk_bytes=chunk_bytes)
    expected = naive_matrix(q, q_mask.bool(), d, d_mask.bool(), symmetric)
    assert got.shape == (3, 7)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def test_chamfer_chunk_sizes_agree_in_float64():
    generator = torch.Generator().manual_seed(2)
    q, q_mask = ragged_batch(2, 4, 6, generator)
    d, d_mask = ragged_batch(9, 5, 6, generator)
    q, d = q.double(), d.double()
    whole = symmetric_chamfer_similarity(q, q_mask, d, d_mask)
    for chunk_bytes in (1, 400, 1000):
        chunked = symmetric_chamfer_similarity(q, q_mask, d, d_mask, chunk_bytes=chunk_bytes)
        torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-12)
    assert whole.dtype == torch.float64


def test_chamfer_without_masks_uses_every_frame():
    generator = torch.Generator().manual_seed(3)
    q = torch.randn(2, 3, 4, generator=generator, dtype=torch.float64)
    d = torch.randn(4, 5, 4, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(chamfer_similarity(q, None, d, None), naive_matrix(q, None, d, None, False))
    torch.testing.assert_close(
        symmetric_chamfer_similarity(q, None, d, None), naive_matrix(q, None, d, None, True)
    )


def test_chamfer_worked_example():
    # x = {e1, e2}, y = {e1, (e1+e2)/√2}: max_j x1·y_j = 1, max_j x2·y_j = 1/√2 -> (1 + 1/√2)/2.
    # Reverse: y1 -> 1, y2 -> 1/√2 -> same; a padded third frame of y (all ones) must be ignored.
    s = 1 / math.sqrt(2)
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    y = torch.tensor([[[1.0, 0.0], [s, s], [1.0, 1.0]]])
    y_mask = torch.tensor([[1, 1, 0]])
    expected = (1 + s) / 2
    assert chamfer_similarity(x, None, y, y_mask).item() == pytest.approx(expected, abs=1e-6)
    assert symmetric_chamfer_similarity(x, None, y, y_mask).item() == pytest.approx(expected, abs=1e-6)
    # Asymmetric case: x has one frame e1, y = {e1, e2}: sim(x, y) = 1, sim(y, x) = (1 + 0)/2.
    x1 = torch.tensor([[[1.0, 0.0]]])
    y2 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    assert chamfer_similarity(x1, None, y2, None).item() == pytest.approx(1.0)
    assert chamfer_similarity(y2, None, x1, None).item() == pytest.approx(0.5)
    assert symmetric_chamfer_similarity(x1, None, y2, None).item() == pytest.approx(0.75)


def test_half_precision_inputs_compute_in_float32():
    generator = torch.Generator().manual_seed(4)
    q, q_mask = ragged_batch(2, 4, 8, generator)
    d, d_mask = ragged_batch(3, 4, 8, generator)
    got = chamfer_similarity(q.half(), q_mask, d.half(), d_mask)
    expected = naive_matrix(q.half().double(), q_mask.bool(), d.half().double(), d_mask.bool(), False)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def test_cosine_against_hand_computation():
    q = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    d = torch.tensor([[4.0, 3.0], [0.0, 2.0], [-1.0, 0.0]])
    # q0 = (0.6, 0.8); d0 = (0.8, 0.6), d1 = (0, 1), d2 = (-1, 0)
    expected = torch.tensor([[0.96, 0.8, -0.6], [0.8, 0.0, -1.0]])
    torch.testing.assert_close(cosine_similarity(q, d), expected)
    generator = torch.Generator().manual_seed(5)
    q, d = torch.randn(4, 6, generator=generator), torch.randn(5, 6, generator=generator)
    loop = torch.tensor(
        [[float(a.double() @ b.double() / (a.double().norm() * b.double().norm())) for b in d] for a in q]
    )
    torch.testing.assert_close(cosine_similarity(q, d).double(), loop.double(), rtol=1e-5, atol=1e-6)


def test_all_zero_mask_is_an_error():
    frames = torch.randn(2, 3, 4)
    good = torch.ones(2, 3, dtype=torch.long)
    bad = torch.tensor([[1, 1, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match=r"database_frames: videos \[1\] have no valid frame"):
        chamfer_similarity(frames, good, frames, bad)
    with pytest.raises(ValueError, match=r"query_frames: videos \[1\] have no valid frame"):
        symmetric_chamfer_similarity(frames, bad, frames, good)


def test_wrong_shapes_are_errors():
    frames = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"query_frames must have shape \[videos, frames, dim\]"):
        chamfer_similarity(frames[0], None, frames, None)
    with pytest.raises(ValueError, match=r"database_frames mask must have shape \(2, 3\), got \(2, 4\)"):
        chamfer_similarity(frames, None, frames, torch.ones(2, 4))
    with pytest.raises(ValueError, match="query dim 4 != database dim 5"):
        chamfer_similarity(frames, None, torch.randn(2, 3, 5), None)


@settings(max_examples=25, deadline=None)
@given(
    num_queries=st.integers(1, 3),
    num_database=st.integers(1, 5),
    query_frames=st.integers(1, 4),
    database_frames=st.integers(1, 4),
    dim=st.integers(1, 5),
    chunk_bytes=st.sampled_from([1, 64, 256 * 2**20]),
    seed=st.integers(0, 2**16),
)
def test_symmetric_chamfer_property(
    num_queries, num_database, query_frames, database_frames, dim, chunk_bytes, seed
):
    generator = torch.Generator().manual_seed(seed)
    q, q_mask = ragged_batch(num_queries, query_frames, dim, generator)
    d, d_mask = ragged_batch(num_database, database_frames, dim, generator)
    forward = chamfer_similarity(q, q_mask, d, d_mask, chunk_bytes=chunk_bytes)
    backward = chamfer_similarity(d, d_mask, q, q_mask, chunk_bytes=chunk_bytes)
    symmetric = symmetric_chamfer_similarity(q, q_mask, d, d_mask, chunk_bytes=chunk_bytes)
    # Symmetric chamfer is the mean of both directions and is symmetric under swapping the sets.
    torch.testing.assert_close(symmetric, (forward + backward.T) / 2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        symmetric,
        symmetric_chamfer_similarity(d, d_mask, q, q_mask, chunk_bytes=chunk_bytes).T,
        rtol=1e-5,
        atol=1e-6,
    )
    # Unit-norm frames: every similarity lies in [-1, 1] (the junk at padding would break this).
    assert forward.abs().max() <= 1 + 1e-5
    torch.testing.assert_close(
        forward.double(), naive_matrix(q, q_mask.bool(), d, d_mask.bool(), False), rtol=1e-5, atol=1e-5
    )


def test_chamfer_symmetric_flag_is_tca_sym():
    generator = torch.Generator().manual_seed(5)
    q, d = torch.randn(2, 4, 6, generator=generator), torch.randn(3, 5, 6, generator=generator)
    q_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    d_mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    both = chamfer_similarity(q, q_mask, d, d_mask, symmetric=True)
    torch.testing.assert_close(both, naive_matrix(q, q_mask, d, d_mask, True).float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(both, symmetric_chamfer_similarity(q, q_mask, d, d_mask, chunk_bytes=64))
    one_way = chamfer_similarity(q, q_mask, d, d_mask)
    torch.testing.assert_close(
        one_way, naive_matrix(q, q_mask, d, d_mask, False).float(), rtol=1e-5, atol=1e-5
    )

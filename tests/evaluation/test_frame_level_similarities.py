"""`frame_level_similarities` (the CPU segment path and the padded path) against a naive per-pair loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidtempo.evaluation.embedding import (
    _consecutive_groups,
    _padded_frame_similarities,
    frame_level_similarities,
)


def naive(query: np.ndarray, video: np.ndarray, symmetric: bool) -> float:
    sims = query.astype(np.float64) @ video.astype(np.float64).T
    forward = np.mean([max(row) for row in sims])
    if not symmetric:
        return float(forward)
    return float((forward + np.mean([max(col) for col in sims.T])) / 2)


def frames(rng, lengths, dim=16, dtype=torch.float32):
    return [torch.from_numpy(rng.standard_normal((n, dim)).astype(np.float32)).to(dtype) for n in lengths]


@pytest.mark.parametrize("kind", ["chamfer", "symmetric_chamfer"])
@pytest.mark.parametrize("chunk_bytes", [1, 64 * 4 * 9, 2 * 2**20])
def test_matches_a_naive_loop_across_block_boundaries(kind, chunk_bytes):
    rng = np.random.default_rng(3)
    # lengths straddle every block size above; one video (70 frames) is longer than the smallest block
    queries = frames(rng, [5, 1, 9, 3])
    database = frames(rng, [7, 1, 70, 2, 12, 4], dtype=torch.float16)  # a float16 store
    database += frames(rng, [4, 30])  # and float32 videos in the same blocks
    got = frame_level_similarities(queries, database, kind, chunk_bytes=chunk_bytes, max_query_frames=6)
    for q, query in enumerate(queries):
        for d, video in enumerate(database):
            expected = naive(query.numpy(), video.float().numpy(), kind != "chamfer")
            assert got[q, d].item() == pytest.approx(expected, abs=1e-5), (q, d)


def test_segment_path_equals_the_padded_path():
    rng = np.random.default_rng(4)
    queries, database = frames(rng, [6, 11]), frames(rng, [3, 9, 1, 25, 8])
    for kind in ("chamfer", "symmetric_chamfer"):
        padded = _padded_frame_similarities(queries, database, kind, 16 * 2**20, 4096, 8 * 2**20, False)
        torch.testing.assert_close(frame_level_similarities(queries, database, kind), padded)


def test_a_video_without_frames_is_named():
    rng = np.random.default_rng(5)
    database = frames(rng, [3, 0, 2])
    with pytest.raises(ValueError, match="database video 1 has no frames"):
        frame_level_similarities(frames(rng, [4]), database)


def test_consecutive_groups():
    assert _consecutive_groups([3, 3, 3, 10, 1], 6) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert _consecutive_groups([1], 0) == [(0, 1)]

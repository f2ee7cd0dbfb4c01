"""2D-TAN export: one HDF5 per dataset, read back as 2D-TAN's dataset readers read it (their documented layout,
re-stated here), uniform clip coverage worked by hand."""

import csv

import h5py
import numpy as np
import pytest
import torch

from vidtempo.processing.tadn_export import (
    tadn_file_name,
    uniform_clip_features,
    write_charades_durations,
    write_tadn_features,
)


def read_like_2dtan(data_dir, dataset, vis_input_type, vid):
    """How 2D-TAN's readers open one video's features: file name per dataset, then f[vid] (ActivityNet:
    f[vid]['c3d_features']), as a float tensor [num_clips, D] L2-normalised per clip (NORMALIZE: True)."""
    name = {
        "charades": f"{vis_input_type}_features.hdf5",
        "activitynet": "sub_activitynet_v1-3.c3d.hdf5",
        "tacos": "tall_c3d_features.hdf5",
    }[dataset]
    with h5py.File(data_dir / name, "r") as f:
        data = f[vid]["c3d_features"][:] if dataset == "activitynet" else f[vid][:]
    features = torch.from_numpy(data).float()
    return torch.nn.functional.normalize(features, dim=1)


def average_to_fixed(features, num_sample_clips):
    """2D-TAN's resampling to NUM_SAMPLE_CLIPS as its paper/config describe it: bin i averages the clips
    round(i * T / n) .. round((i + 1) * T / n) - 1 (or takes clip round(i * T / n) when that range is empty)."""
    t = features.shape[0]
    edges = [min(int(round(i * t / num_sample_clips)), t - 1) for i in range(num_sample_clips + 1)]
    rows = []
    for i in range(num_sample_clips):
        a, b = edges[i], edges[i + 1]
        rows.append(features[a:b].mean(0) if a < b else features[a])
    return torch.stack(rows)


@pytest.mark.parametrize("dataset", ["charades", "activitynet", "tacos"])
def test_export_reads_back_as_2dtan_reads_it(tmp_path, dataset):
    rng = np.random.default_rng(0)
    feats = {f"vid{i}": rng.normal(size=(n, 6)).astype(np.float32) for i, n in enumerate([5, 9, 16])}
    vis = "c3d" if dataset == "tacos" else "locvtp"
    path = write_tadn_features(tmp_path, dataset, feats, vis_input_type=vis)
    assert path.name == tadn_file_name(dataset, vis) and [p.name for p in tmp_path.iterdir()] == [path.name]
    for vid, expected in feats.items():
        got = read_like_2dtan(tmp_path, dataset, vis, vid)
        assert got.shape == expected.shape  # [num_clips, D]: INPUT_SIZE = D = 6
        torch.testing.assert_close(got, torch.nn.functional.normalize(torch.from_numpy(expected), dim=1))
        assert average_to_fixed(got, 16).shape == (16, 6)
    with h5py.File(path, "r") as f:
        assert int(f.attrs["feature_size"]) == 6 and sorted(f) == sorted(feats)
    with pytest.raises(ValueError, match="same feature size"):
        write_tadn_features(tmp_path, dataset, {"a": np.zeros((2, 3)), "b": np.zeros((2, 4))})


def test_uniform_clips_by_hand():
    # consecutive clips [0,1], [1,2], [2,2.5] (the last one short) -> 3 equal bins of 2.5 / 3 s
    e = np.eye(3)
    times = np.array([[0, 1], [1, 2], [2, 2.5]])
    out = uniform_clip_features(e, times, num_clips=3)
    w = 2.5 / 3
    np.testing.assert_allclose(out[0], e[0])
    np.testing.assert_allclose(out[1], ((1 - w) * e[0] + (2 * w - 1) * e[1]) / w)
    np.testing.assert_allclose(out[2], ((2 - 2 * w) * e[1] + 0.5 * e[2]) / w)
    # equal clips already uniform: unchanged
    f = np.random.default_rng(1).normal(size=(4, 5))
    np.testing.assert_allclose(uniform_clip_features(f, np.stack([np.arange(4.0), np.arange(4.0) + 1], 1)), f)
    with pytest.raises(ValueError, match="clip_times"):
        uniform_clip_features(f, times)


def test_charades_durations_as_2dtan_reads_them(tmp_path):
    path = write_charades_durations(tmp_path, {"AO8RW": 30.5, "B2": 12.0}, "test")
    with open(path) as f:
        durations = {row["id"]: float(row["length"]) for row in csv.DictReader(f)}
    assert path.name == "Charades_v1_test.csv" and durations == {"AO8RW": 30.5, "B2": 12.0}

"""On-demand TCA training data: a packed store read through a bounded cache gives the same batches as the
in-RAM dict (same seed), with and without DataLoader workers, and keeps the pack up to date."""

import numpy as np
import pytest
import torch
from factories import make_synthetic, tiny_config

from vidtempo.processing.descriptor_store import PackedDescriptors, packed_path
from vidtempo.training.tca_data import open_training_store
from vidtempo.training.train_tca import load_data, make_loader


def batches(config, epochs=2):
    data = load_data(config, 1)
    dataset, loader = make_loader(config, data)
    out = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        loader.sampler.set_epoch(epoch)
        out += list(loader)
    return data, out


@pytest.mark.parametrize("num_workers", [0, 1])
def test_on_demand_batches_equal_the_in_ram_batches(tmp_path, num_workers):
    desc, pairs, descriptors, _ = make_synthetic(tmp_path, num_groups=12, num_distractors=30)
    in_ram, expected = batches(tiny_config(tmp_path, desc, pairs, batch_size=4))
    config = tiny_config(tmp_path, desc, pairs, batch_size=4, descriptor_cache_mb=0, num_workers=num_workers)
    on_demand, got = batches(config)
    assert isinstance(on_demand.descriptors, PackedDescriptors) and isinstance(in_ram.descriptors, dict)
    assert on_demand.train_pairs == in_ram.train_pairs and on_demand.val_distractors == in_ram.val_distractors
    assert len(got) == len(expected) > 2
    for a, b in zip(got, expected):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    for video_id in in_ram.val_distractors:  # validation reads the same features
        np.testing.assert_array_equal(on_demand.descriptors[video_id], descriptors[video_id])


def test_open_training_store_packs_once_and_validates_the_bound(tmp_path):
    desc, _, descriptors, _ = make_synthetic(tmp_path, num_groups=3, num_distractors=5)
    assert open_training_store(desc, None) is None  # in RAM: nothing packed
    assert not packed_path(desc).exists()
    store = open_training_store(desc, 1)
    assert store.cache_bytes == 2**20 and sorted(store) == sorted(descriptors)
    stamp = (packed_path(desc) / "frames.bin").stat().st_mtime_ns
    open_training_store(desc, 1)
    assert (packed_path(desc) / "frames.bin").stat().st_mtime_ns == stamp  # kept, not re-packed
    with pytest.raises(ValueError, match="descriptor_cache_mb must be >= 0"):
        open_training_store(desc, -1)

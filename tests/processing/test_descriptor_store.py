"""The packed descriptor store: float16 packs equal the parquet folder, int8 with per-vector scale is within
half a quantisation step, stale packs are refused, and the on-demand cache never exceeds its byte bound."""

import pickle
from collections import OrderedDict

import numpy as np
import pytest

from vidtempo.processing.descriptor_store import (
    PackedDescriptors,
    PackedWriter,
    decode_int8,
    encode_int8,
    load_descriptors,
    pack_descriptors,
    packed_path,
    write_descriptors,
)

DIM = 8


def collection(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return {
        f"v{i:03d}": rng.normal(size=(int(rng.integers(1, 12)), DIM)).astype(np.float16) for i in range(n)
    }


def test_float16_pack_equals_the_parquet_folder_and_picks_the_same_copy_of_a_repeated_id(tmp_path):
    videos = collection()
    folder = write_descriptors(tmp_path / "desc", videos, shard_size=7)
    write_descriptors(
        tmp_path / "desc", {"v004": np.full((3, DIM), 0.5, np.float16)}
    )  # a second copy of one id, in another shard
    reference = load_descriptors(folder)
    store = PackedDescriptors(pack_descriptors(folder), directory=folder)
    assert sorted(store) == sorted(reference) and len(store) == len(videos)
    for video_id, features in reference.items():
        got = store[video_id]
        assert got.dtype == np.float16 and store.num_frames(video_id) == len(features)
        np.testing.assert_array_equal(got, features)


def test_int8_per_vector_scale_is_within_half_a_step_of_the_input(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, DIM)).astype(np.float32) * rng.uniform(0.01, 10, size=(50, 1)).astype(np.float32)
    x[3] = 0.0  # an all-zero frame decodes to zeros
    codes, scales = encode_int8(x)
    np.testing.assert_allclose(scales, np.abs(x).max(1) / 127, rtol=1e-6)  # the formula, by hand
    assert codes.dtype == np.int8 and np.abs(codes).max() == 127
    err = np.abs(decode_int8(codes, scales) - x)
    assert np.all(err <= scales[:, None] / 2 + 1e-6) and not err[3].any()
    writer = PackedWriter(tmp_path / "int8", DIM, "int8")
    writer.add("a", x[:20])
    writer.add("b", x[20:])
    store = PackedDescriptors(writer.close())
    np.testing.assert_array_equal(store["b"], decode_int8(codes[20:], scales[20:]))
    assert (tmp_path / "int8" / "frames.bin").stat().st_size == x.size  # one byte per value
    with pytest.raises(ValueError, match="codec must be one of"):
        PackedWriter(tmp_path / "bad", DIM, "int4")


def test_stale_or_incomplete_packs_are_refused_and_repacked(tmp_path):
    folder = write_descriptors(tmp_path / "desc", collection(10), shard_size=4)
    pack_descriptors(folder)
    write_descriptors(folder, {"new": np.ones((2, DIM), np.float16)})  # another shard after packing
    with pytest.raises(ValueError, match="re-pack it"):
        PackedDescriptors(packed_path(folder), directory=folder)
    assert "new" in PackedDescriptors(pack_descriptors(folder), directory=folder)  # re-packed
    (packed_path(folder) / "frames.bin").open("ab").write(b"\0" * 3)
    with pytest.raises(ValueError, match="disagree"):
        PackedDescriptors(packed_path(folder))
    (packed_path(folder) / "manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="not a packed descriptor store"):
        PackedDescriptors(packed_path(folder))


def test_the_cache_never_exceeds_its_byte_bound_and_is_lru(tmp_path):
    videos = collection(40, seed=2)
    store_dir = pack_descriptors(write_descriptors(tmp_path / "desc", videos))
    bound = 600  # bytes: a few videos of 1..11 frames x 8 x 2 B
    store = PackedDescriptors(store_dir, cache_bytes=bound)
    model, model_bytes, hits = OrderedDict(), 0, 0  # a naive LRU kept alongside
    rng = np.random.default_rng(3)
    for video_id in rng.choice(sorted(videos), 400):
        got = store[video_id]
        np.testing.assert_array_equal(got, videos[video_id])
        size = videos[video_id].nbytes
        if video_id in model:
            hits += 1
            model.move_to_end(video_id)
        elif size <= bound:
            while model_bytes + size > bound:
                model_bytes -= model.popitem(last=False)[1]
            model[video_id], model_bytes = size, model_bytes + size
        assert store.cached_bytes <= bound and store.cached_bytes == model_bytes
    assert store.hits == hits > 0 and store.misses == 400 - hits
    worker = pickle.loads(pickle.dumps(store))  # what a DataLoader worker receives
    assert worker.cached_bytes == 0 and not worker._cache and worker.hits == store.hits
    np.testing.assert_array_equal(worker["v000"], videos["v000"])
    uncached = PackedDescriptors(store_dir, cache_bytes=0)
    uncached["v001"], uncached["v001"]
    assert uncached.hits == 0 and uncached.cached_bytes == 0


def test_merge_copies_every_shard_reports_repeated_videos_and_refuses_a_name_twice(tmp_path):
    from vidtempo.processing.descriptor_store import append_failure, merge_descriptor_folders, read_failures

    a, b = collection(6, seed=4), collection(5, seed=5)
    b = {f"b{k}": v for k, v in b.items()} | {"v000": a["v000"]}  # one video extracted on both nodes
    write_descriptors(tmp_path / "a", a, shard_size=4)
    write_descriptors(tmp_path / "b", b, shard_size=4)
    append_failure(tmp_path / "b", "broken", "/v/broken.mp4", "cannot open")
    append_failure(tmp_path / "b", "v001", "/v/v001.mp4", "timeout")  # failed on b, done on a: not failed
    with pytest.warns(UserWarning, match="1 videos are in several parts"):
        result = merge_descriptor_folders(tmp_path / "merged", [tmp_path / "a", tmp_path / "b"])
    assert result == {"shards": 4, "videos": 11, "duplicates": 1, "failed": 1}
    merged = load_descriptors(tmp_path / "merged")
    for video_id, features in (a | b).items():
        np.testing.assert_array_equal(merged[video_id], features)
    assert [row["video_id"] for row in read_failures(tmp_path / "merged")] == ["broken"]
    with pytest.raises(ValueError, match="already in"):
        merge_descriptor_folders(tmp_path / "merged", [tmp_path / "a"])

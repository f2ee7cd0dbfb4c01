"""The temporal benchmark's invariants (issue 20): overlap shares, generic-frame shares, no accidental shared
content between unrelated families, determinism by seed, and a small benchmark written to disk."""

import json
from collections import defaultdict

import numpy as np
import pytest

from vidtempo.synthetic.temporal_benchmark import (
    build_temporal_specs,
    generate_temporal_benchmark,
    render_temporal_video,
)


@pytest.fixture(scope="module")
def groups():
    return build_temporal_specs(12, 10, seed=3)


def _frames(shots):
    return sum(s["num_frames"] for s in shots)


def _generic(shots):
    return sum(s["num_frames"] for s in shots if s["kind"] == "generic")


def test_duplicate_scene_shares_15_to_35_percent_of_the_query_as_one_segment(groups):
    families = [g for g in groups if g[0]["role"] == "query"]
    assert len(families) == 12
    for group in families:
        query, ds = group[0], next(v for v in group if v["role"] == "DS")
        ((q0, q1, d0, d1),) = ds["segments"]
        assert 0.15 <= (q1 - q0) / _frames(query["shots"]) <= 0.35
        assert q1 - q0 == d1 - d0

        # the segment is the query's frames, shot for shot (independently: expand shots into per-frame keys)
        def per_frame(video):
            return [json.dumps(s, sort_keys=True) for s in video["shots"] for _ in range(s["num_frames"])]

        assert per_frame(query)[q0:q1] == per_frame(ds)[d0:d1]
        # and nothing else of the DS comes from the query
        query_keys = {s["content"] for s in query["shots"] if s["kind"] != "generic"}
        outside = [s for s in per_frame(ds)[:d0] + per_frame(ds)[d1:] if '"kind": "generic"' not in s]
        assert not {json.loads(s)["content"] for s in outside} & query_keys


def test_near_duplicates_are_whole_copies_under_transforms(groups):
    for group in (g for g in groups if g[0]["role"] == "query"):
        query = group[0]
        for nd in (v for v in group if v["role"] == "ND"):
            assert nd["shots"] == query["shots"]
            assert nd["transforms"] and all(t["name"] != "trim" for t in nd["transforms"])


def test_generic_frames_are_10_to_30_percent_of_every_video(groups):
    shares = [_generic(v["shots"]) / _frames(v["shots"]) for g in groups for v in g]
    assert len(shares) == 12 * 6 + 10
    assert min(shares) >= 0.10 and max(shares) <= 0.30
    # generic shots come from one pool, shared across families (independent of family)
    users = defaultdict(set)
    for group in groups:
        for video in group:
            for shot in video["shots"]:
                if shot["kind"] == "generic":
                    users[shot["content"]].add(video["family"])
    assert max(len(families) for families in users.values()) >= 5


def test_unrelated_families_share_only_generic_and_look_alike_shots(groups):
    owners = defaultdict(set)
    tiles = defaultdict(set)
    for group in groups:
        for video in group:
            for shot in video["shots"]:
                if shot["kind"] == "generic":
                    continue
                owners[shot["content"]].add(video["family"])
                if shot["kind"] == "photo":
                    tiles[(shot["photo"], tuple(shot["box"]))].add(shot["content"])
    lookalike = {k: v for k, v in owners.items() if k.startswith("lookalike:")}
    assert lookalike, "no look-alike shots drawn"
    assert all(len(families) == 2 for families in lookalike.values())
    assert all(len(families) == 1 for key, families in owners.items() if key not in lookalike)
    assert all(len(keys) == 1 for keys in tiles.values())  # one photo tile, one content key


def test_same_seed_same_specs_and_frames_other_seed_other_specs():
    a, b = build_temporal_specs(3, 2, seed=5), build_temporal_specs(3, 2, seed=5)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(a) != json.dumps(build_temporal_specs(3, 2, seed=6))
    first, second = render_temporal_video(a[0][1]), render_temporal_video(b[0][1])
    assert first.dtype == np.uint8 and np.array_equal(first, second)


def test_generic_frames_carry_little_information_and_content_frames_differ(groups):
    query = groups[0][0]
    frames = render_temporal_video(query)
    kinds = [s["kind"] for s in query["shots"] for _ in range(s["num_frames"])]
    std = frames.reshape(len(frames), -1, 3).astype(float).std(axis=1).mean(axis=1)
    generic = [s for s, k in zip(std, kinds) if k == "generic"]
    content = [s for s, k in zip(std, kinds) if k != "generic"]
    assert np.median(generic) < 0.5 * np.median(content)


def test_written_benchmark_in_fivr_schema_with_segment_pairs(tmp_path):
    import av

    paths = generate_temporal_benchmark(tmp_path, num_sources=3, num_distractors=2, seed=1, seconds=(20, 22),
                                        size=(64, 48), workers=1, progress=False)  # fmt: skip
    fivr = json.loads(paths.annotation.read_text())
    heldout, train = fivr["versions"]["synthetic"], json.loads(paths.train_pairs.read_text())
    assert heldout["queries"] and all(set(fivr["annotation"][q]) == {"ND", "DS", "CS", "IS", "DA"}
                                      for q in heldout["queries"])  # fmt: skip
    heldout_ids = set(heldout["queries"]) | set(heldout["database"])
    paired = {v for pair in train["video_pairs"] for v in pair["videos"]}
    assert paired and not paired & heldout_ids
    ds_pairs = [p for p in train["video_pairs"] if p["videos"][1].endswith("_ds")]
    assert ds_pairs and all(len(p["segments"]) == 1 for p in ds_pairs)
    manifest = json.loads(paths.manifest.read_text())
    spec = next(v for g in manifest["specs"] for v in g if v["video_id"] == ds_pairs[0]["videos"][1])
    with av.open(str(paths.videos / f"{spec['video_id']}.mp4")) as container:
        stream = container.streams.video[0]
        assert float(stream.average_rate) == 1.0
        assert sum(1 for _ in container.decode(stream)) == _frames(spec["shots"])
    assert generate_temporal_benchmark(tmp_path, num_sources=3, num_distractors=2, seed=1, seconds=(20, 22),
                                       size=(64, 48), progress=False).root == paths.root  # fmt: skip


def test_duplicate_scene_share_follows_the_option():
    wide = build_temporal_specs(6, 2, seed=4, ds_share=(0.5, 0.8))
    shares = []
    for group in (g for g in wide if g[0]["role"] == "query"):
        ((q0, q1, _, _),) = next(v for v in group if v["role"] == "DS")["segments"]
        shares.append((q1 - q0) / _frames(group[0]["shots"]))
    assert min(shares) >= 0.5 and max(shares) <= 0.8
    with pytest.raises(ValueError, match="ds_share"):
        build_temporal_specs(6, 2, seed=4, ds_share=(0.5, 0.6))

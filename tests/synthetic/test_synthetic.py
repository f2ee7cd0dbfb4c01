"""Synthetic near-duplicate benchmark: determinism, real files, FIVR-schema annotation, transforms that do
what they claim (checked on decoded videos and against naive references)."""

import json

import av
import numpy as np
import pytest

from vidtempo.cli.synthetic import neardup_main as main
from vidtempo.evaluation.benchmarks import evaluate_fivr, load_fivr_annotation
from vidtempo.synthetic import transforms as T
from vidtempo.synthetic.neardup import build_specs, generate_benchmark, render_video
from vidtempo.synthetic.renderer import random_incident, random_scene, render_scene, shape_mask
from vidtempo.synthetic.video_writer import write_video

SIZE, FPS, DURATION = (64, 48), 6.0, 3.0


def decode(path):
    """All frames (uint8 [T, H, W, 3]) and the declared frame rate, read with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, float(stream.average_rate)


def mae(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("neardup")
    paths = generate_benchmark(
        out,
        num_sources=3,
        num_distractors=2,
        seed=7,
        size=SIZE,
        fps=FPS,
        duration=DURATION,
        workers=1,
        progress=False,
    )
    manifest = json.loads(paths.manifest.read_text())
    specs = {s["video_id"]: s for group in manifest["specs"] for s in group}
    return paths, manifest, specs


def test_specs_and_frames_are_deterministic_by_seed():
    a = build_specs(2, 1, seed=3, size=SIZE, fps=FPS, duration=DURATION)
    b = build_specs(2, 1, seed=3, size=SIZE, fps=FPS, duration=DURATION)
    c = build_specs(2, 1, seed=4, size=SIZE, fps=FPS, duration=DURATION)
    assert a == b
    assert a != c
    spec_a, spec_c = a[0][1], c[0][1]
    frames_1, frames_2 = render_video(spec_a, FPS), render_video(b[0][1], FPS)
    np.testing.assert_array_equal(frames_1, frames_2)
    frames_c = render_video(spec_c, FPS)
    assert frames_1.shape != frames_c.shape or mae(frames_1, frames_c) > 5


def test_every_transform_chain_fits_the_video_it_is_applied_to():
    """A trim drawn after a speed-up must fit the shortened video (120 families: several speed -> trim chains)."""
    groups = build_specs(120, 0, seed=0, size=(16, 16), fps=4.0, duration=8.0)
    chains = [spec["transforms"] for group in groups for spec in group if spec["transforms"]]
    names = [[t["name"] for t in chain] for chain in chains]
    assert sum(n.index("speed") < n.index("trim") for n in names if "speed" in n and "trim" in n) >= 1
    for chain in chains:
        frames = np.zeros((32, 16, 16, 3), np.uint8)
        out = T.apply_transforms(frames, chain)  # raised "trim: ... outside a 16-frame video" before the fix
        assert len(out) >= 1


def test_files_are_decodable_with_declared_count_fps_and_size(bench):
    paths, manifest, specs = bench
    assert len(manifest["videos"]) == 3 * 6 + 2 and not manifest["failed"]
    for entry in manifest["videos"]:
        frames, fps = decode(paths.root / entry["path"])
        expected = render_video(specs[entry["video_id"]], FPS)
        assert frames.shape == expected.shape, entry["video_id"]
        assert frames.shape[1:3] == (entry["size"][1], entry["size"][0])
        assert fps == pytest.approx(FPS)
        # The file shows what the manifest says it shows (codec tolerance grows with the crf) ...
        assert mae(frames, expected) < (10 if entry["crf"] <= 30 else 20), entry
        query = render_video(specs[f"{entry['family']}_q"], FPS) if entry["role"] == "ND" else None
        if query is not None and query.shape == frames.shape and entry["transforms"][0]["name"] != "reencode":
            assert mae(frames, expected) < 0.8 * mae(frames, query), entry  # ... and differs from the query


def test_annotation_is_fivr_schema_with_disjoint_training_and_held_out_families(bench):
    paths, manifest, _ = bench
    data = load_fivr_annotation(paths.annotation)  # the FIVR evaluator's own validation
    held_out = data["versions"]["synthetic"]
    train = json.loads(paths.train_pairs.read_text())
    family = {v["video_id"]: v["family"] for v in manifest["videos"]}
    held_families = {family[v] for v in held_out["queries"] + held_out["database"]}
    train_videos = {v for p in train["video_pairs"] for v in p["videos"]} | set(train["negs"])
    assert held_out["queries"] and train["video_pairs"] and train["negs"]
    assert not held_families & {family[v] for v in train_videos}
    for query in held_out["queries"]:
        labels = data["annotation"][query]
        assert set(labels) == {"ND", "DS", "CS", "IS", "DA"}
        assert len(labels["ND"]) == 2 and len(labels["DS"]) == len(labels["CS"]) == len(labels["IS"]) == 1
        for ids in labels.values():
            assert set(ids) <= set(held_out["database"])
            assert all(family[v] == family[query] for v in ids)
    roles = {v["video_id"]: v["role"] for v in manifest["videos"]}
    for a, b in (p["videos"] for p in train["video_pairs"]):  # training positives are copies of one family
        assert family[a] == family[b] and {roles[a], roles[b]} <= {"query", "ND", "DS"}
    assert train["hard_negs"] and all(roles[v] in ("CS", "IS") for v in train["hard_negs"])
    assert not set(train["hard_negs"]) & held_out_ids(held_out) and not set(train["negs"]) & held_out_ids(
        held_out
    )


def held_out_ids(version):
    return set(version["queries"]) | set(version["database"])


def test_fivr_evaluator_runs_unchanged_on_the_annotation(bench):
    paths, manifest, _ = bench
    data = json.loads(paths.annotation.read_text())
    version = data["versions"]["synthetic"]
    role = {v["video_id"]: (v["family"], v["role"]) for v in manifest["videos"]}
    grade = {"ND": 4.0, "DS": 3.0, "CS": 2.0, "IS": 1.0}

    def oracle(q, d, sign):
        same = role[q][0] == role[d][0]
        return sign * (grade.get(role[d][1], 0.0) if same else 0.0)

    perfect = {q: {d: oracle(q, d, 1) for d in version["database"]} for q in version["queries"]}
    result = evaluate_fivr(perfect, paths.annotation, version="synthetic")
    assert result["metrics"] == {"DSVR": 1.0, "CSVR": 1.0, "ISVR": 1.0}
    worst = {q: {d: oracle(q, d, -1) for d in version["database"]} for q in version["queries"]}
    labels = {"DSVR": ("ND", "DS"), "CSVR": ("ND", "DS", "CS"), "ISVR": ("ND", "DS", "CS", "IS")}
    expected = {}
    for task, task_labels in labels.items():  # naive AP of the reversed ranking, worked out per query
        aps = []
        for q in version["queries"]:
            ranking = sorted(version["database"], key=lambda d: -worst[q][d])
            relevant = {v for label in task_labels for v in data["annotation"][q][label]}
            hits = [r + 1 for r, d in enumerate(ranking) if d in relevant]
            aps.append(np.mean([(i + 1) / rank for i, rank in enumerate(hits)]))
        expected[task] = float(np.mean(aps))
    got = evaluate_fivr(worst, paths.annotation, version="synthetic")["metrics"]
    assert got == pytest.approx(expected) and got["DSVR"] < 0.5


def test_relatives_share_what_their_label_says(bench):
    _, _, specs = bench
    for video_id, spec in specs.items():
        if spec["role"] == "query":
            query = spec
            family = video_id[:-2]
            ds, cs, is_ = specs[f"{family}_ds"], specs[f"{family}_cs"], specs[f"{family}_is"]
            shared = [s for s in ds["scenes"] if s in query["scenes"]]
            assert 1 <= len(shared) < len(ds["scenes"])  # DS: some of the query's scenes, not all its content
            for a, b in zip(query["scenes"], cs["scenes"]):  # CS: same event, other camera
                assert a["shapes"] == b["shapes"] and a["t0"] == b["t0"] and a["camera"] != b["camera"]
            objects = lambda s: sorted((o["kind"], tuple(o["color"])) for o in s["shapes"])  # noqa: E731
            assert objects(is_["scenes"][0]) == objects(query["scenes"][0])  # IS: same incident objects...
            assert all(s not in query["scenes"] for s in is_["scenes"])  # ...in other scenes
            for a, b in zip(query["scenes"], cs["scenes"]):  # CS: the other camera faces another backdrop
                assert a["background"] != b["background"]
            for k in range(2):  # ND: re-uploads, by another channel than the query's
                assert specs[f"{family}_nd{k}"]["channel"]["id"] != query["channel"]["id"]


def test_channels_prepend_their_intro_and_stamp_their_watermark():
    groups = build_specs(6, 6, seed=1, size=SIZE, fps=FPS, duration=DURATION, num_channels=3)
    specs = [spec for group in groups for spec in group]
    by_channel = {}
    for spec in specs:
        by_channel.setdefault(spec["channel"]["id"], []).append(spec)
    assert len(by_channel) == 3
    plain = {**specs[0], "channel": None}
    content = render_video(plain, FPS)
    frames = render_video(specs[0], FPS)
    intro_length = specs[0]["channel"]["intro"]["num_frames"]
    assert len(frames) == len(content) + intro_length  # intro prepended to the unchanged content length
    box = specs[0]["channel"]["watermark"]["box"]
    r0, r1 = int(box[1] * SIZE[1]), int(box[3] * SIZE[1])
    c0, c1 = int(box[0] * SIZE[0]), int(box[2] * SIZE[0])
    colours = {tuple(specs[0]["channel"]["watermark"][k]) for k in ("color", "color2")}
    patch = frames[:, r0:r1, c0:c1].reshape(-1, 3)
    assert {tuple(int(v) for v in p) for p in np.unique(patch, axis=0)} == colours  # on every frame
    outside = np.ones(SIZE[::-1], bool)
    outside[r0:r1, c0:c1] = False
    np.testing.assert_array_equal(frames[intro_length:][:, outside], content[:, outside])  # content untouched
    for members in by_channel.values():  # one channel, one intro: the first frames are identical
        if len(members) > 1:
            a, b = render_video(members[0], FPS), render_video(members[1], FPS)
            n = members[0]["channel"]["intro"]["num_frames"]
            if a.shape[1:] == b.shape[1:]:
                np.testing.assert_array_equal(a[:n], b[:n])
    other = next(
        s for s in specs if s["channel"]["id"] != specs[0]["channel"]["id"] and s["size"] == specs[0]["size"]
    )
    assert mae(render_video(other, FPS)[:2], frames[:2]) > 5
    no_channels = build_specs(6, 6, seed=1, size=SIZE, fps=FPS, duration=DURATION, num_channels=0)
    assert all("channel" not in spec for group in no_channels for spec in group)
    # channels come from their own random stream: the videos themselves do not change
    assert [[{k: v for k, v in s.items() if k != "channel"} for s in g] for g in groups] == no_channels


def _source(seed=0, frames=12):
    rng = np.random.default_rng(seed)
    return render_scene(random_scene(rng, random_incident(rng), frames), SIZE, FPS)


def _roundtrip(tmp_path, frames, name="v.mp4"):
    write_video(tmp_path / name, frames, FPS)
    return decode(tmp_path / name)[0]


def test_flipped_video_equals_flipped_source_after_encoding(tmp_path):
    source = _source()
    decoded = _roundtrip(tmp_path, T.apply_transforms(source, [{"name": "hflip"}]))
    reference = source[:, :, [SIZE[0] - 1 - j for j in range(SIZE[0])]]
    assert mae(decoded, reference) < 10
    assert mae(decoded, source) > 2 * mae(decoded, reference)


def test_trimmed_video_matches_source_at_its_offset(tmp_path):
    source = _source(frames=16)
    decoded = _roundtrip(tmp_path, T.trim(source, start=5, length=7))
    assert len(decoded) == 7
    errors = [mae(decoded, source[o : o + 7]) for o in range(0, 10)]
    assert int(np.argmin(errors)) == 5 and errors[5] < 10


@pytest.mark.parametrize("factor", [0.5, 2.0, 1.5])
def test_speed_change_plays_source_frames_at_factor(tmp_path, factor):
    source = _source(frames=12)
    decoded = _roundtrip(tmp_path, T.speed(source, factor))
    assert len(decoded) == int(12 / factor)
    for k, frame in enumerate(decoded):
        errors = [mae(frame, s) for s in source]
        assert errors[int(k * factor)] < 10
        assert int(np.argmin(errors)) == int(k * factor)


def test_crop_and_resize_match_naive_loops():
    source = _source(frames=2)
    box = (0.2, 0.1, 0.8, 0.75)
    out = T.crop(source, box)
    h, w = source.shape[1:3]
    c0, c1, r0, r1 = round(0.2 * w), round(0.8 * w), round(0.1 * h), round(0.75 * h)
    reference = np.zeros_like(source)
    for i in range(h):
        for j in range(w):
            reference[:, i, j] = source[
                :, r0 + int((i + 0.5) * (r1 - r0) / h), c0 + int((j + 0.5) * (c1 - c0) / w)
            ]
    np.testing.assert_array_equal(out, reference)
    small = T.resize(source, 32, 24)
    assert small.shape == (2, 24, 32, 3)
    np.testing.assert_array_equal(small[:, 5, 7], source[:, 11, 15])


def test_color_shift_logo_and_text_touch_only_what_they_claim():
    source = _source(frames=3)
    gain, offset = [1.2, 0.8, 1.0], [10.0, -20.0, 5.0]
    shifted = T.color_shift(source, gain, offset)
    expected = np.clip(np.rint(source.astype(np.float64) * np.array(gain) + np.array(offset)), 0, 255)
    np.testing.assert_array_equal(shifted, expected.astype(np.uint8))
    logo = T.overlay_logo(source, (0.5, 0.5, 0.75, 0.75), (255, 0, 0), (0, 0, 255))
    inside = np.zeros(source.shape[1:3], bool)
    inside[24:36, 32:48] = True
    assert set(map(tuple, logo[:, inside].reshape(-1, 3))) == {(255, 0, 0), (0, 0, 255)}
    np.testing.assert_array_equal(logo[:, ~inside], source[:, ~inside])
    text = T.overlay_text(source, [0, 1, 2], 0.5, (250, 250, 250))
    changed_rows = np.nonzero((text != source).any(axis=(0, 2, 3)))[0]
    assert changed_rows.min() >= 24 and changed_rows.max() < 24 + 7 and (text == 250).all(-1).any()


def test_shape_masks_match_geometry():
    u, v = np.meshgrid(np.linspace(-1, 1, 41), np.linspace(-1, 1, 41))
    circle = shape_mask("circle", u, v, 0.5)
    assert circle.sum() == sum(1 for a, b in zip(u.ravel(), v.ravel()) if a * a + b * b <= 0.25)
    assert shape_mask("square", u, v, 0.5).sum() == 21 * 21
    triangle = shape_mask("triangle", u, v, 0.5)
    assert triangle[20, 20] and not triangle[2, 2] and not triangle[38, 2]
    with pytest.raises(ValueError, match="unknown shape kind"):
        shape_mask("hexagon", u, v, 0.5)


def test_generation_resumes_and_refuses_other_parameters(tmp_path):
    kwargs = dict(
        num_sources=1, num_distractors=1, seed=1, size=(32, 32), fps=4.0, duration=2.0, progress=False
    )
    paths = generate_benchmark(tmp_path, **kwargs)
    videos = sorted(paths.videos.glob("*.mp4"))
    assert len(videos) == 7
    mtimes = {p: p.stat().st_mtime_ns for p in videos}
    victim = videos[0]
    victim.unlink()
    paths.info.unlink()
    generate_benchmark(tmp_path, **kwargs)  # redoes only the missing video
    assert victim.exists() and paths.info.exists()
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items() if p != victim)
    assert generate_benchmark(tmp_path, **kwargs).root == tmp_path  # complete: reused
    with pytest.raises(ValueError, match="other parameters"):
        generate_benchmark(tmp_path, **{**kwargs, "seed": 2})
    with pytest.raises(ValueError, match="even"):
        generate_benchmark(tmp_path / "x", **{**kwargs, "size": (33, 32)})


def test_cli_help_and_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--num-sources" in capsys.readouterr().out
    args = [
        str(tmp_path),
        "--num-sources",
        "1",
        "--num-distractors",
        "0",
        "--size",
        "32x32",
        "--fps",
        "4",
        "--duration",
        "2",
        "--workers",
        "1",
        "--no-progress",
    ]
    assert main(args) == 0
    assert sorted(p.stem for p in (tmp_path / "videos").glob("*.mp4")) == [
        "f000_cs",
        "f000_ds",
        "f000_is",
        "f000_nd0",
        "f000_nd1",
        "f000_q",
    ]
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--size", "32by32"])
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


def test_vectorised_renderer_matches_a_per_pixel_loop():
    rng = np.random.default_rng(5)
    scene = random_scene(rng, random_incident(rng), 6, t0=0.7)
    scene["shapes"][0]["visible"] = [0.7, 1.2]  # event seconds: visible in frames 0..2 at 6 fps
    width, height = 20, 14
    frames = render_scene(scene, (width, height), FPS)
    for k in (2, 4):
        t = scene["t0"] + k / FPS
        rel = k / FPS
        cam, bg = scene["camera"], scene["background"]
        zoom = cam["zoom"] * (1 + cam["zoom_rate"] * rel)
        colors = np.asarray(bg["colors"], dtype=np.float64)
        for i in range(height):
            for j in range(width):
                x = cam["pos"][0] + cam["vel"][0] * rel + (j + 0.5 - width / 2) / height / zoom
                y = cam["pos"][1] + cam["vel"][1] * rel + (i + 0.5 - height / 2) / height / zoom
                wave = [
                    np.sin(2 * np.pi * (f[0] * x + f[1] * y) + p) for f, p in zip(bg["freqs"], bg["phases"])
                ]
                pixel = colors[0] + sum(
                    (0.5 + 0.5 * wave[c]) * (colors[c] - colors[0]) * 0.5 * c for c in (1, 2)
                )
                pixel = pixel * (0.85 + 0.15 * wave[0])
                for shape in scene["shapes"]:
                    if "visible" in shape and not shape["visible"][0] <= t < shape["visible"][1]:
                        continue
                    a = shape["angle"] + shape["spin"] * t
                    dx, dy = (
                        x - (shape["pos"][0] + shape["vel"][0] * t),
                        y - (shape["pos"][1] + shape["vel"][1] * t),
                    )
                    u, v = np.cos(a) * dx + np.sin(a) * dy, -np.sin(a) * dx + np.cos(a) * dy
                    if shape_mask(shape["kind"], u, v, shape["size"]):
                        stripe = np.sin(2 * np.pi * shape["stripes"] * (u + 0.5 * v)) > 0
                        pixel = np.asarray(shape["color"] if stripe else shape["color2"], dtype=np.float64)
                expected = np.clip(pixel, 0, 255).astype(np.uint8)
                # float32 vs float64 rounding: at most one grey level, except on a shape's edge pixels.
                assert np.abs(frames[k, i, j].astype(int) - expected).max() <= 1 or _on_edge(frames[k], i, j)


def _on_edge(frame, i, j):
    patch = frame[max(0, i - 1) : i + 2, max(0, j - 1) : j + 2].reshape(-1, 3).astype(int)
    return np.abs(patch - frame[i, j].astype(int)).max() > 30


def test_a_video_that_fails_is_reported_and_left_out_of_the_annotation(tmp_path, monkeypatch):
    import vidtempo.synthetic.neardup as neardup

    real = neardup.write_video

    def flaky(path, frames, fps, **kwargs):
        if path.stem == "f001_nd1":
            raise OSError("disk full")
        return real(path, frames, fps, **kwargs)

    monkeypatch.setattr(neardup, "write_video", flaky)
    tiny = dict(
        num_sources=2, num_distractors=0, seed=2, size=(32, 32), fps=4.0, duration=2.0, progress=False
    )
    paths = generate_benchmark(tmp_path, **tiny)
    failures = [json.loads(line) for line in (tmp_path / "failed.jsonl").read_text().splitlines()]
    assert failures == [{"video_id": "f001_nd1", "error": "OSError: disk full"}]
    assert len(list(paths.videos.glob("*.mp4"))) == 11
    text = paths.annotation.read_text() + paths.train_pairs.read_text()
    assert "f001_nd1" not in text and "f001_nd0" in text
    monkeypatch.setattr(neardup, "write_video", real)  # a rerun retries the failed video only
    generate_benchmark(tmp_path, **tiny)
    assert (paths.videos / "f001_nd1.mp4").exists() and "f001_nd1" in paths.annotation.read_text()

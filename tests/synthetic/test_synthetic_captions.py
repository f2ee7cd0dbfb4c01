"""Synthetic captioned-video set: spans inside the videos, the described object drawn (and moving as
described) inside its span and absent outside, Charades-STA lines that match the CSV."""

import csv
import json

import av
import numpy as np
import pytest

from vidtempo.cli.synthetic import captions_main as main
from vidtempo.synthetic.captions import COLORS, build_caption_specs, generate_captioned_videos

FPS, DURATION, SIZE = 8.0, 3.0, (64, 64)


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    root = tmp_path_factory.mktemp("captions")
    paths = generate_captioned_videos(
        root, num_videos=6, seed=3, size=SIZE, fps=FPS, duration=DURATION, progress=False
    )
    with open(paths["captions.csv"]) as handle:
        rows = list(csv.DictReader(handle))
    return paths, rows


def decode(path):
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def color_pixels(frame, rgb, tolerance=60.0):
    """(row, col) of pixels within `tolerance` (euclidean RGB) of `rgb`."""
    distance = np.linalg.norm(frame.astype(np.float64) - np.asarray(rgb, dtype=np.float64), axis=-1)
    return np.argwhere(distance < tolerance)


def test_specs_are_deterministic():
    assert build_caption_specs(5, seed=1, fps=FPS, duration=DURATION) == build_caption_specs(
        5, 1, FPS, DURATION
    )
    assert build_caption_specs(5, seed=1, fps=FPS, duration=DURATION) != build_caption_specs(
        5, 2, FPS, DURATION
    )


def test_spans_lie_inside_videos_and_splits_are_disjoint(captioned):
    paths, rows = captioned
    assert rows and {r["split"] for r in rows} == {"train", "test"}
    by_video = {}
    for row in rows:
        by_video.setdefault(row["video_id"], []).append(row)
    for _video_id, events in by_video.items():
        frames = decode(events[0]["video_path"])
        length = len(frames) / FPS
        assert len(frames) == int(DURATION * FPS) and frames.shape[1:3] == (SIZE[1], SIZE[0])
        spans = sorted((float(e["start"]), float(e["end"])) for e in events)
        assert all(0 <= s < e <= length + 1e-9 for s, e in spans)
        assert all(a[1] <= b[0] + 1e-9 for a, b in zip(spans, spans[1:]))  # events one after another
    train = {r["video_id"] for r in rows if r["split"] == "train"}
    test = {r["video_id"] for r in rows if r["split"] == "test"}
    assert not train & test
    with open(paths["train.csv"]) as handle:
        assert {r["video_id"] for r in csv.DictReader(handle)} == train


def test_described_object_is_drawn_in_its_span_and_moves_as_described(captioned):
    _, rows = captioned
    checked_motion = 0
    for row in rows:
        frames = decode(row["video_path"])
        color = row["caption"].split()[1]
        start, end = float(row["start"]), float(row["end"])
        inside = [k for k in range(len(frames)) if start <= k / FPS < end]
        outside = [k for k in range(len(frames)) if not start - 0.5 / FPS <= k / FPS < end + 0.5 / FPS]
        assert inside
        counts = [len(color_pixels(frames[k], COLORS[color])) for k in inside]
        assert min(counts) >= 8, (row, counts)  # the object is on screen in every frame of its span
        for k in outside:
            assert len(color_pixels(frames[k], COLORS[color])) <= 2, (row, k)  # and nowhere else
        first, last = (
            color_pixels(frames[inside[0]], COLORS[color]),
            color_pixels(frames[inside[-1]], COLORS[color]),
        )
        action = " ".join(row["caption"].split()[3:])
        axis_sign = {
            "slides left": (1, -1),
            "slides right": (1, 1),
            "moves up": (0, -1),
            "moves down": (0, 1),
        }
        if action in axis_sign and len(inside) >= 3:
            axis, sign = axis_sign[action]
            assert sign * (last[:, axis].mean() - first[:, axis].mean()) > 3, row
            checked_motion += 1
        if action == "grows" and len(inside) >= 3:
            assert len(last) > 1.2 * len(first), row
            checked_motion += 1
    assert checked_motion >= 2


def test_charades_sta_lines_match_the_csv(captioned):
    paths, rows = captioned
    for split in ("train", "test"):
        lines = paths[f"charades_sta_{split}.txt"].read_text().splitlines()
        expected = [r for r in rows if r["split"] == split]
        assert len(lines) == len(expected)
        for line, row in zip(lines, expected):
            head, sentence = line.split("##")
            video_id, start, end = head.split()
            assert (video_id, sentence) == (row["video_id"], row["caption"])
            assert float(start) == pytest.approx(float(row["start"]), abs=0.005)
            assert float(end) == pytest.approx(float(row["end"]), abs=0.005)
    assert json.loads(paths["captions.json"].read_text()) == [
        {**r, "start": float(r["start"]), "end": float(r["end"])} for r in rows
    ]


def test_cli_reuses_complete_output_and_refuses_other_parameters(captioned, capsys):
    paths, _ = captioned
    root = str(paths["videos"].parent)
    mtime = paths["info.json"].stat().st_mtime_ns
    args = [
        root,
        "--num-videos",
        "6",
        "--seed",
        "3",
        "--size",
        "64x64",
        "--fps",
        "8",
        "--duration",
        "3",
        "--no-progress",
    ]
    assert main(args) == 0
    assert paths["info.json"].stat().st_mtime_ns == mtime
    assert main(args[:-1] + ["--seed", "4"]) == 1  # one `error:` line, no traceback
    assert "other parameters" in capsys.readouterr().err


def test_harder_set_gaps_shared_attribute_and_video_level_captions(tmp_path):
    from vidtempo.evaluation.grounding import read_charades_sta

    specs = build_caption_specs(40, seed=5, fps=4.0, duration=8.0, hard=True)
    for spec in specs:
        events = spec["events"]
        assert len(events) == 3
        words = [e["caption"].split() for e in events]  # "a <colour> <shape> <action...>"
        colors, kinds = {w[1] for w in words}, {w[2] for w in words}
        assert (len(colors), len(kinds)) in {(1, 3), (3, 1)}  # one attribute shared by the three events
        assert len({" ".join(w[3:]) for w in words}) == 3  # so the action word tells them apart
        for a, b in zip(events, events[1:]):
            assert b["start"] - a["end"] >= 0.4  # an idle gap between events (>= 6% of 8 s, frame-rounded)
        covered = sum(e["end"] - e["start"] for e in events)
        assert covered <= 0.7 * 8.0  # the whole video is a poor answer (IoU <= 0.22 with any one event)
        assert spec["caption"] == ", then ".join(e["caption"] for e in events)
    paths = generate_captioned_videos(
        tmp_path, num_videos=3, seed=5, size=(32, 32), fps=4.0, duration=8.0, test_fraction=0.34, hard=True,
        progress=False,
    )  # fmt: skip
    with open(paths["captions.csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert [(float(r["start"]), float(r["end"])) for r in rows] == [(0.0, 8.0)] * 3  # video-level only
    assert len(read_charades_sta(paths["charades_sta_test.txt"])) == 3  # one grounding query per event
    frames = decode(rows[0]["video_path"])
    spec = build_caption_specs(3, seed=5, fps=4.0, duration=8.0, test_fraction=0.34, hard=True)[0]
    idle = [
        k
        for k in range(len(frames))
        if not any(e["start"] - 0.25 <= k / 4 < e["end"] + 0.25 for e in spec["events"])
    ]
    assert idle  # frames with no event: the background alone (no saturated object colour)
    for k in idle:
        assert all(len(color_pixels(frames[k], rgb)) <= 2 for rgb in COLORS.values())

"""Video reading: 1-fps rule, uniform sampling, decord vs PyAV, chunked decoding, every bad-input case.

Fixture videos are real encoded files; every frame shows its own index as a 16-bit pattern of black/white
8x8 blocks, so the decoded frames can be identified independently of the sampler under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidtempo.processing import video_reader
from vidtempo.processing.video_reader import VideoDecodeError, iter_video_chunks, probe_video, read_video
from vidtempo.synthetic.video_writer import write_video

HEIGHT, WIDTH, BLOCK = 48, 64, 8
# (name, fps written, number of frames, step by the authors' rule worked by hand, fps used for timestamps)
CASES = [
    ("f10.mp4", 10, 35, 10, 10.0),
    ("f25.webm", 25, 80, 25, 25.0),
    ("f2997.mp4", 30000 / 1001, 100, 30, 30000 / 1001),  # round(29.97) = 30
    ("f30.mp4", 30, 95, 30, 30.0),
    ("f200.mp4", 200, 700, 25, 25.0),  # reported fps > 144 -> assume 25 -> step 25
]


def coded_frames(num_frames: int) -> np.ndarray:
    """uint8 [T, 48, 64, 3]: frame t shows the bits of t in the blocks of the first two block rows."""
    frames = np.full((num_frames, HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
    for t in range(num_frames):
        for bit in range(16):
            row, col = divmod(bit, WIDTH // BLOCK)
            value = 255 if (t >> bit) & 1 else 0
            frames[t, row * BLOCK : (row + 1) * BLOCK, col * BLOCK : (col + 1) * BLOCK] = value
    return frames


def decode_codes(frames: np.ndarray) -> np.ndarray:
    """Inverse of `coded_frames` on decoded (lossy) frames: [N, H, W, 3] -> frame numbers [N]."""
    frames = np.asarray(frames, dtype=np.float64)
    codes = np.zeros(len(frames), dtype=np.int64)
    for bit in range(16):
        row, col = divmod(bit, WIDTH // BLOCK)
        block = frames[:, row * BLOCK + 2 : (row + 1) * BLOCK - 2, col * BLOCK + 2 : (col + 1) * BLOCK - 2]
        codes |= (block.mean(axis=(1, 2, 3)) > 128).astype(np.int64) << bit
    return codes


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    paths = {}
    for name, fps, count, _, _ in CASES:
        kwargs = {"crf": 10} if name.endswith(".mp4") else {"bit_rate": 2_000_000}
        paths[name] = write_video(root / name, coded_frames(count), fps, **kwargs)
    paths["short.mp4"] = write_video(root / "short.mp4", coded_frames(5), 10, crf=10)  # 0.5 s
    return paths


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize(("name", "fps", "count", "step", "stamp_fps"), CASES)
def test_one_fps_rule(videos, backend, name, fps, count, step, stamp_fps):
    clip = read_video(videos[name], fps=1.0, backend=backend)
    expected = list(range(0, count, step))  # frame 0 and every round(fps)-th frame
    assert clip.backend == backend
    assert clip.indices.tolist() == expected
    assert decode_codes(clip.frames).tolist() == expected  # the frames really are those frames
    np.testing.assert_allclose(clip.timestamps, np.array(expected) / stamp_fps, rtol=1e-6)
    assert clip.frames.shape == (len(expected), HEIGHT, WIDTH, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == pytest.approx(fps, rel=1e-4)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_uniform_num_frames(videos, backend):
    clip = read_video(videos["f10.mp4"], fps=None, num_frames=5, backend=backend)
    # linspace(0, 34, 5) = 0, 8.5, 17, 25.5, 34 -> rounded half to even
    assert clip.indices.tolist() == [0, 8, 17, 26, 34]
    assert decode_codes(clip.frames).tolist() == [0, 8, 17, 26, 34]
    # more samples than frames repeat frames and never fail; webm reports no frame count (PyAV counts packets)
    clip = read_video(videos["f25.webm"], fps=None, num_frames=100, backend=backend)
    expected = np.rint(np.linspace(0, 79, 100)).astype(int)
    assert decode_codes(clip.frames).tolist() == expected.tolist()


@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_decord_and_pyav_decode_the_same_frames(videos, name):
    a = read_video(videos[name], backend="decord").frames.astype(np.int16)
    b = read_video(videos[name], backend="pyav").frames.astype(np.int16)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() < 1.0 and np.abs(a - b).max() <= 16  # same codec, tiny conversion noise


def test_chunks_bound_memory_and_concatenate_to_the_whole(videos):
    seen = []

    def transform(frames):
        seen.append(len(frames))
        return frames[:, ::2, ::2]  # e.g. a resize: full-resolution frames live only inside one chunk

    chunks = list(iter_video_chunks(videos["f200.mp4"], chunk_size=4, backend="pyav", transform=transform))
    assert max(seen) <= 4 and sum(seen) == 28
    whole = read_video(videos["f200.mp4"], backend="pyav")
    np.testing.assert_array_equal(np.concatenate([c.frames for c in chunks]), whole.frames[:, ::2, ::2])
    np.testing.assert_array_equal(np.concatenate([c.indices for c in chunks]), whole.indices)


def test_auto_falls_back_to_pyav(videos, monkeypatch):
    reference = read_video(videos["f30.mp4"], backend="pyav")
    assert read_video(videos["f30.mp4"], backend="auto").backend == "decord"

    def broken(path):
        raise RuntimeError("decord cannot open this")

    monkeypatch.setattr(video_reader, "_decord_reader", broken)
    clip = read_video(videos["f30.mp4"], backend="auto")
    assert clip.backend == "pyav"
    np.testing.assert_array_equal(clip.frames, reference.frames)
    with pytest.raises(VideoDecodeError, match="decord cannot read"):
        read_video(videos["f30.mp4"], backend="decord")
    monkeypatch.setattr(video_reader, "decord_available", lambda: False)
    assert read_video(videos["f30.mp4"], backend="auto").backend == "pyav"


def _audio_only(path):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        frame.rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav"])
def test_bad_inputs_raise_video_decode_error(videos, tmp_path, backend):
    good = videos["f10.mp4"].read_bytes()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
    (tmp_path / "truncated.mp4").write_bytes(good[: len(good) // 2])  # mp4 index (moov) is at the end
    garbage = bytearray(good)
    garbage[48:] = np.random.default_rng(0).integers(0, 256, len(good) - 48, dtype=np.uint8).tobytes()
    (tmp_path / "garbage.mp4").write_bytes(bytes(garbage))
    _audio_only(tmp_path / "audio.wav")
    cases = {
        tmp_path / "missing.mp4": "does not exist",
        tmp_path / "empty.mp4": "empty file",
        tmp_path / "text.mp4": "cannot open",
        tmp_path / "truncated.mp4": "cannot open|corrupt",
        tmp_path / "garbage.mp4": "cannot open|corrupt",
        tmp_path / "audio.wav": "no video stream",
        videos["short.mp4"]: "shorter than 1",
        tmp_path: "not a regular file",
    }
    for path, reason in cases.items():
        with pytest.raises(VideoDecodeError, match=reason) as info:
            read_video(path, backend=backend)
        assert str(path) in str(info.value) and info.value.path == str(path)
    with pytest.raises(VideoDecodeError, match=r"absurd resolution 64x48"):
        read_video(videos["f10.mp4"], backend=backend, max_side=32)
    with pytest.raises(VideoDecodeError, match=r"absurd resolution 64x48"):
        probe_video(videos["f10.mp4"], min_side=50)


def test_probe_reports_stream_facts(videos):
    info = probe_video(videos["f2997.mp4"])
    assert (info.width, info.height, info.num_frames) == (WIDTH, HEIGHT, 100)
    assert info.fps == pytest.approx(30000 / 1001, rel=1e-6)
    assert info.duration == pytest.approx(100 * 1001 / 30000, abs=0.05)
    assert probe_video(videos["f200.mp4"]).effective_fps == 25.0


def test_read_all_frames_matches_a_plain_pyav_decode(tmp_path):
    """Every frame, no minimum duration (0.5 s here), and the reported rate: against av.open + decode."""
    import av

    from vidtempo.processing.video_reader import read_all_frames

    frames = np.random.default_rng(3).integers(0, 256, (6, 16, 24, 3), dtype=np.uint8)
    path = tmp_path / "half_second.mp4"
    write_video(path, frames, fps=12)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        expected = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        rate = float(stream.average_rate)
    decoded, fps = read_all_frames(path)
    assert decoded.dtype == np.uint8 and decoded.shape == expected.shape == (6, 16, 24, 3)
    np.testing.assert_array_equal(decoded, expected)
    assert fps == pytest.approx(rate) and fps == pytest.approx(12)
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(VideoDecodeError, match="text.mp4"):
        read_all_frames(tmp_path / "text.mp4")


def test_video_reader_is_the_only_decoder():
    """No other module of processing/ (or modeling/) opens a video container or imports a decoder itself."""
    import re

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(
        r"^\s*(import av\b|from av\b|import decord|from decord)|av\.open\(|decord\.VideoReader", re.M
    )
    offenders = [
        str(p.relative_to(root))
        for folder in ("processing", "modeling")
        for p in (root / folder).glob("*.py")
        if p.name != "video_reader.py" and pattern.search(p.read_text())
    ]
    assert offenders == []


# ---------------------------------------------------------------------------------------------------------
# Planned decoding: only the requested frames, resized while decoding, memory independent of video length
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize("name", ["f25.webm", "f30.mp4", "f200.mp4"])
def test_read_frames_fetches_exactly_the_requested_frames(videos, backend, name):
    count = next(case[2] for case in CASES if case[0] == name)
    indices = np.array([count - 1, 3, 40, 3, 0, 41])  # any order, repeats
    frames, fps = video_reader.read_frames(videos[name], indices, backend=backend)
    assert decode_codes(frames).tolist() == indices.tolist()
    if backend == "pyav":  # PyAV's own full decode, indexed: the same pixels
        np.testing.assert_array_equal(frames, video_reader.read_all_frames(videos[name])[0][indices])
    small, _ = video_reader.read_frames(videos[name], indices, short_side=24, backend=backend)
    assert small.shape == (6, 24, 32, 3)  # 48x64 -> shorter side 24, aspect kept
    assert fps == pytest.approx(next(case[1] for case in CASES if case[0] == name), rel=1e-4)


def test_decode_segment_keeps_the_segment_frames(videos):
    frames, fps = video_reader.decode_segment(videos["f10.mp4"], 1.0, 2.25)
    assert decode_codes(frames).tolist() == list(range(10, 23))  # timestamps in [1.0, 2.25)
    assert fps == pytest.approx(10.0)
    with pytest.raises(ValueError, match="no frame in the segment"):
        video_reader.decode_segment(videos["f10.mp4"], 10.0, 11.0)
    assert video_reader.resized_size(640, 360, 224) == (398, 224)
    assert video_reader.resized_size(360, 640, 224) == (224, 398)


def _segment_peak_bytes(path: str) -> int:
    import tracemalloc

    video_reader.decode_segment(path, 1.0, 3.0)  # warm up (imports, codec set-up)
    tracemalloc.start()
    frames, _ = video_reader.decode_segment(path, 1.0, 3.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(frames) == 50
    return peak


def test_segment_memory_does_not_grow_with_video_length(tmp_path):
    # a 2 s segment of a 4 s and of a 60 s video (25 fps, 48x64): the full decode of the long one alone would
    # hold 1500 frames (13.8 MB); the planned reader holds the segment (50 frames, 0.46 MB) and its copies
    short = write_video(tmp_path / "short.mp4", coded_frames(100), 25, crf=30)
    long = write_video(tmp_path / "long.mp4", np.tile(coded_frames(100), (15, 1, 1, 1)), 25, crf=30)
    segment_bytes = 50 * HEIGHT * WIDTH * 3
    peak_short, peak_long = _segment_peak_bytes(str(short)), _segment_peak_bytes(str(long))
    assert peak_long < 4 * segment_bytes + 1_000_000, (peak_short, peak_long)
    assert peak_long < 1.5 * peak_short + 200_000, (peak_short, peak_long)

"""The video writer: seeded inputs give byte-identical files, and bad frames are refused by name."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from vidtempo.processing.video_reader import read_video
from vidtempo.synthetic.video_writer import write_video


def _moving_texture(num_frames: int = 40, height: int = 72, width: int = 96) -> np.ndarray:
    """A blocky random texture scrolling sideways: enough motion for the encoder's lookahead to matter."""
    blocks = np.random.default_rng(0).integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    texture = np.kron(blocks, np.ones((8, 8, 1), np.uint8))[:height, :width]
    return np.stack([np.roll(texture, t, axis=1) for t in range(num_frames)])


def test_h264_files_are_byte_identical_across_encodes(tmp_path):
    # With x264's default mb-tree this gave 2-9 distinct files out of 16-64 encodes on this machine.
    frames = _moving_texture()
    digests = set()
    for i in range(24):
        path = write_video(tmp_path / f"v{i}.mp4", frames, fps=25, crf=40)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1, f"{len(digests)} different files from 24 encodes of the same frames"


def test_written_video_decodes_to_the_frames_it_was_given(tmp_path):
    frames = _moving_texture(num_frames=12)
    path = write_video(tmp_path / "v.mp4", frames, fps=10, crf=0)
    decoded = read_video(path, num_frames=12).frames
    assert decoded.shape == frames.shape
    # crf 0 is near-lossless in yuv420p: only chroma subsampling and rounding separate the two
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 12


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((3, 16, 16), np.uint8), "uint8 \\[T, H, W, 3\\]"),
        (np.zeros((3, 16, 16, 3), np.float32), "uint8 \\[T, H, W, 3\\]"),
        (np.zeros((0, 16, 16, 3), np.uint8), "no frames"),
        (np.zeros((3, 15, 16, 3), np.uint8), "must be even"),
    ],
)
def test_bad_frames_are_refused_naming_the_file(tmp_path, frames, message):
    with pytest.raises(ValueError, match=message) as error:
        write_video(tmp_path / "bad.mp4", frames, fps=10)
    assert "bad.mp4" in str(error.value)

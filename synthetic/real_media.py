"""Real photographs that ship inside installed packages (no network), for tests and the embedded benchmark."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# name -> (package, path inside the package, licence)
PHOTOS = {
    "grace_hopper": (
        "matplotlib",
        "mpl-data/sample_data/grace_hopper.jpg",
        "public domain (US Navy photograph)",
    ),
    "astronaut": ("skimage", "data/astronaut.png", "public domain (NASA)"),
    "chelsea": ("skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)"),
    "coffee": ("skimage", "data/coffee.png", "CC0 (Rachel Michetti)"),
    "rocket": ("skimage", "data/rocket.jpg", "public domain (SpaceX)"),
    "motorcycle": (
        "skimage",
        "data/motorcycle_left.png",
        "Middlebury 2014 stereo dataset (Scharstein et al.), shipped with scikit-image",
    ),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg", "public domain (NASA)"),
    "retina": ("skimage", "data/retina.jpg", "CC0 (Häggström, Wikimedia Commons)"),
    "immunohistochemistry": ("skimage", "data/ihc.png", "no known copyright restrictions (CMMI)"),
    "china": ("sklearn", "datasets/images/china.jpg", "CC BY 2.0 (danielbuechele, Flickr)"),
    "flower": ("sklearn", "datasets/images/flower.jpg", "CC BY 2.0 (vultilion, Flickr)"),
}


def bundled_photos(names: list[str] | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Yield `(name, uint8 RGB array [H, W, 3])` for the photographs bundled with matplotlib (`sample_data`),
    scikit-image (`skimage/data`, local files only: never the fetcher that downloads) and scikit-learn
    (`load_sample_images`' files). Licences:

    - grace_hopper (matplotlib): public domain, US Navy photograph;
    - astronaut, hubble_deep_field (NASA), rocket (SpaceX): public domain;
    - chelsea (Stefan van der Walt), coffee (Rachel Michetti), retina: CC0;
    - immunohistochemistry (CMMI): no known copyright restrictions;
    - motorcycle: the left view of the Middlebury 2014 stereo dataset (Scharstein et al.), as scikit-image ships it;
    - china, flower (scikit-learn): CC BY 2.0, by danielbuechele and vultilion on Flickr.

    `names` selects and orders them (default: all of `PHOTOS`). A photo whose package is not installed is an
    error naming the package (matplotlib is a core dependency; the others come with `vidtempo[offline]`)."""
    from PIL import Image

    for name in names if names is not None else list(PHOTOS):
        if name not in PHOTOS:
            raise KeyError(f"unknown photo {name!r}; choose from {sorted(PHOTOS)}")
        package, relative, _ = PHOTOS[name]
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ImportError(
                f"photo {name!r} ships with {package}, which is not installed "
                '(pip install "vidtempo[offline]")'
            )
        path = Path(spec.origin).parent / relative
        if not path.is_file():
            raise FileNotFoundError(f"photo {name!r}: {path} is missing from the installed {package}")
        with Image.open(path) as image:
            yield name, np.asarray(image.convert("RGB")).copy()


def camera_motion_video(
    photo: np.ndarray,
    num_frames: int = 8,
    size: tuple[int, int] = (160, 160),
    window: float = 0.7,
    zoom: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """A short "camera over a photo" clip: uint8 [num_frames, H, W, 3] (`size` = (W, H), even). A window of
    `window` x the photo's short side pans along a random straight line (seeded) while zooming in by `zoom`;
    each view is resized to `size` with antialiased bilinear interpolation."""
    import torch
    import torch.nn.functional as F

    if photo.ndim != 3 or photo.shape[-1] != 3 or photo.dtype != np.uint8:
        raise ValueError(
            f"camera_motion_video: photo must be uint8 [H, W, 3], got {photo.dtype} {photo.shape}"
        )
    if num_frames < 1 or not 0 < window <= 1 or not 0 <= zoom < 1:
        raise ValueError(
            f"camera_motion_video: need num_frames >= 1, 0 < window <= 1, 0 <= zoom < 1, got "
            f"{num_frames}, {window}, {zoom}"
        )
    rng = np.random.default_rng(seed)
    height, width = photo.shape[:2]
    image = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None].float()
    start, end = rng.uniform(0, 1, 2), rng.uniform(0, 1, 2)  # window centre path, fractions of the free range
    frames = []
    for t in np.linspace(0.0, 1.0, num_frames):
        side = int(round(min(height, width) * window * (1 - zoom * t)))
        x = int(round((start[0] + (end[0] - start[0]) * t) * (width - side)))
        y = int(round((start[1] + (end[1] - start[1]) * t) * (height - side)))
        view = image[..., y : y + side, x : x + side]
        view = F.interpolate(
            view, size=(size[1], size[0]), mode="bilinear", align_corners=False, antialias=True
        )
        frames.append(view.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy())
    return np.stack(frames)


__all__ = ["PHOTOS", "bundled_photos", "camera_motion_video"]

"""`make demo` placeholder: a short real run of TCA on random frame descriptors (replaced by the end-to-end job)."""

from __future__ import annotations

import argparse

import torch

from vidtempo.modeling import TCAConfig, TCAModel, chamfer_similarity, cosine_similarity


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=4, help="number of random videos")
    parser.add_argument("--frames", type=int, default=12, help="frames per video")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = TCAModel(TCAConfig()).eval()
    base = torch.randn(args.videos, args.frames, model.config.input_size)
    variant = base + 0.3 * torch.randn_like(base)  # near-duplicates of the same videos
    with torch.no_grad():
        a, b = model(base), model(variant)
    print("cosine (TCA_c), rows = originals, cols = noisy copies:")
    print(cosine_similarity(a.video_embeds, b.video_embeds))
    print("chamfer (TCA_f):")
    print(chamfer_similarity(a.frame_embeds, None, b.frame_embeds, None))


if __name__ == "__main__":
    main()

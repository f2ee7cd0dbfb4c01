"""`vidtempo-ablation-locvtp`: the LocVTP loss ablation (L_c, L_c+L_f, L_c+L_t, all three) on the harder
embedded captioned set, at the feature level with the real offline towers (protocol: docs/locvtp.md).

    vidtempo-ablation-locvtp --output outputs/ablation_locvtp --videos 120 --seeds 0 1 2 3 4 5 6 7

Renders the harder captioned set (`synthetic/captions.py`, hard=True) unless `--captioned DIR` is given,
extracts frozen EfficientNet-Lite0 frame and MiniLM token features (the `vidtempo[offline]` extra), tunes
the learning rate per arm, trains every arm on every seed (paired), and writes `ablation_locvtp.json` and
`ablation_locvtp.md` (tables with 95% t-intervals over seeds, chance rows, the pre-registered decision).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ._contract import add_common_flags, positive, run_command

DESCRIPTION = (
    "LocVTP loss ablation on the harder captioned set: feature-level model over frozen Lite0 + MiniLM "
    "features, lr tuned per arm, paired seeds, 95% intervals and a fixed decision rule"
)
METRICS = (
    "mIoU",
    "R@1,IoU=0.3",
    "R@1,IoU=0.5",
    "R@1,IoU=0.7",
    "R@5,IoU=0.3",
    "R@5,IoU=0.5",
    "R@5,IoU=0.7",
    "t2v R@5",
)


def build_parser() -> argparse.ArgumentParser:
    """The `vidtempo-ablation-locvtp` parser."""
    parser = argparse.ArgumentParser(prog="vidtempo-ablation-locvtp", description=DESCRIPTION)
    parser.add_argument("--output", required=True, help="output folder (the rendered set goes under it)")
    parser.add_argument("--captioned", help="an existing harder captioned set folder (default: render one)")
    parser.add_argument("--videos", type=positive(int), default=120, help="videos to render (default 120)")
    parser.add_argument("--size", type=positive(int), default=64, help="rendered frame side (default 64)")
    parser.add_argument(
        "--fps", type=float, default=4.0, help="rendered frame rate (default 4; clips of 2 frames)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)), help="default 0..7")
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3, 3e-3], help="lr sweep per arm")
    parser.add_argument("--steps", type=positive(int), default=300, help="training steps per run")
    parser.add_argument(
        "--feature-size", type=positive(int), default=128, help="frame side fed to Lite0 (default 128)"
    )
    return add_common_flags(parser)


def _fmt(interval) -> str:
    mean, low, high = interval
    return f"{mean:.1f} [{low:.1f}, {high:.1f}]"


def markdown(results: dict) -> str:
    """The results as markdown tables."""
    lines = [
        f"Seeds {results['seeds']}, {results['steps']} steps, {results['num_train_videos']} training / "
        f"{results['num_test_videos']} test videos, {results['num_test_queries']} test queries. Mean over "
        "seeds [95% t-interval]. lr chosen per arm: "
        + ", ".join(f"{a} {lr:g}" for a, lr in results["lr"].items()),
        "",
        "| row | " + " | ".join(METRICS) + " |",
        "| --- " * (len(METRICS) + 1) + "|",
    ]
    for name, row in results["chance"].items():
        lines.append(f"| chance: {name} | " + " | ".join(f"{row[m]:.1f}" for m in METRICS) + " |")
    for arm, row in results["summary"].items():
        lines.append(f"| {arm} | " + " | ".join(_fmt(row[m]) for m in METRICS) + " |")
    lines += [
        "",
        "| arm vs L_c | Δ mIoU [95% t-interval] | decision | per seed |",
        "| --- | --- | --- | --- |",
    ]
    for arm, row in results["paired_vs_L_c"].items():
        seeds = " ".join(f"{d:+.1f}" for d in row["per_seed"])
        lines.append(f"| {arm} | {_fmt(row['delta_mIoU'])} | {row['decision']} | {seeds} |")
    lines += ["", f"Trained model (all three) localizes beyond chance: {results['trained_model_localizes']}."]
    return "\n".join(lines) + "\n"


def _body(args: argparse.Namespace) -> int:
    import logging

    from ..processing.atomic_files import write_json_atomic, write_text_atomic
    from ..synthetic.captions import generate_captioned_videos
    from ..training.locvtp_ablation import build_ablation_data, run_ablation

    out = Path(args.output)
    captioned = args.captioned
    if not captioned:
        captioned = str(out / "captioned")
        generate_captioned_videos(
            captioned, args.videos, seed=0, size=(args.size, args.size), fps=args.fps, duration=8.0,
            test_fraction=0.25, progress=False, hard=True,
        )  # fmt: skip
    cache = out / "features.pt"
    if cache.exists():  # the frozen features of this output folder's set (tensors only)
        import torch

        from ..training.locvtp_ablation import AblationData

        saved = torch.load(cache, weights_only=True)
        data, rows = AblationData(**saved["data"]), saved["rows"]
    else:
        import dataclasses

        import torch

        data, rows = build_ablation_data(captioned, size=args.feature_size)
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"data": dataclasses.asdict(data), "rows": rows}, cache)
    logging.getLogger(__name__).info("features: %s frames per video", data.frame_features.shape[1])
    results = run_ablation(data, rows, args.seeds, args.lrs, args.steps, log=print)
    write_json_atomic(out / "ablation_locvtp.json", results)
    text = markdown(results)
    write_text_atomic(out / "ablation_locvtp.md", text)
    print(text)
    print(json.dumps({a: r["decision"] for a, r in results["paired_vs_L_c"].items()}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`vidtempo-ablation-locvtp`: exit 0 on success, 2 on a usage error, 1 on a runtime error."""
    return run_command(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""`make demo-paper`: the paper's claims on the temporal benchmark, benchmark seeds x training seeds x arms,
each difference with a paired bootstrap interval and the verdict of the rule fixed in docs/demo.md.

    python -m vidtempo.cli.demo_paper --output outputs/paper --benchmark-seeds 0 1 2 --train-seeds 0 1 2 \\
        --arms main infonce triplet moco lstm gru netvlad

Every `vidtempo-demo` flag applies (sizes, recipe). Per benchmark seed B the demo's stages 1-3 (generate,
extract, PCA) run once into `OUTPUT/bB/`; per arm and training seed T a TCA model is trained into
`OUTPUT/bB/train-ARM-tT/` (a finished run is reused) and evaluated on B's held-out queries. Writes
`OUTPUT/paper.json` (every run's mAP, every claim's difference, interval and verdict) and `OUTPUT/paper.md`.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from ._contract import run_command
from .demo import BASELINE_ROW, CASCADE_ROW

# arm -> the demo flags it changes
ARMS = {
    "main": {},
    "infonce": {"loss": "infonce"},
    "triplet": {"loss": "triplet", "bank_size": 0},
    "moco": {"key_momentum": 0.999},
    "lstm": {"aggregator": "lstm"},
    "gru": {"aggregator": "gru"},
    "netvlad": {"aggregator": "netvlad"},
    "imac": {"pooling": "imac"},  # its own extraction and PCA per benchmark seed
    "tcav": {},  # TCA_v: a comparator trained on top of the main arm's frozen TCA of the same seeds
}
TCA_C, TCA_SYM, TCA_F = "TCA_c (cosine)", "TCA_sym (symmetric chamfer)", "TCA_f (chamfer)"
TCA_V = "TCA_v (comparator)"
CHAMFER_BASELINE = "baseline: frame descriptors (chamfer)"
# (claim, the paper's finding, rule, (arm, row) of A, (arm, row) of B); rules: docs/demo.md
CLAIMS = [
    ("TCA_f > TCA_sym", "TCA_f .877 vs TCA_sym .728 DSVR (FIVR-200K)", ">", ("main", TCA_F), ("main", TCA_SYM)),
    ("TCA_sym > TCA_c", "TCA_sym .728 vs TCA_c .570", ">", ("main", TCA_SYM), ("main", TCA_C)),
    ("TCA_c > baseline (mean pooling, cosine)", "TCA_c above the no-TCA baseline", ">", ("main", TCA_C),
     ("main", BASELINE_ROW)),
    ("TCA_f > chamfer on raw descriptors", "contextualised frames beat raw ones", ">", ("main", TCA_F),
     ("main", CHAMFER_BASELINE)),
    ("circle >= InfoNCE (TCA_c)", "circle loss best", ">=", ("main", TCA_C), ("infonce", TCA_C)),
    ("memory bank > in-batch triplets (TCA_c)", "bank beats triplets (accuracy, time)", ">", ("main", TCA_C),
     ("triplet", TCA_C)),
    ("MoCo momentum not better (TCA_c)", "momentum hurts with a large bank", "not better", ("moco", TCA_C),
     ("main", TCA_C)),
    ("Transformer >= LSTM (TCA_c)", "Transformer beats LSTM", ">=", ("main", TCA_C), ("lstm", TCA_C)),
    ("Transformer >= GRU (TCA_c)", "Transformer beats GRU", ">=", ("main", TCA_C), ("gru", TCA_C)),
    ("Transformer >= NetVLAD (TCA_c)", "Transformer beats NetVLAD", ">=", ("main", TCA_C), ("netvlad", TCA_C)),
    ("L3-iRMAC >= iMAC (TCA_f)", "L3-iRMAC better", ">=", ("main", TCA_F), ("imac", TCA_F)),
    ("TCA_f >= TCA_v", "chamfer (TCA_f) is best; the comparator is not reported better", ">=", ("main", TCA_F),
     ("tcav", TCA_V)),
    ("L3-iRMAC >= iMAC (raw chamfer, untrained)", "L3-iRMAC better", ">=", ("main", CHAMFER_BASELINE),
     ("imac", CHAMFER_BASELINE)),
]  # fmt: skip
NOT_RUN: list[tuple[str, str, str]] = []
TASK = "DSVR"
COMPARATOR_EPOCHS = 10  # ViSiL-style training on top of the frozen TCA (train_comparator's default)


def verdict(rule: str, low: float, high: float, margin: float = 0.01) -> str:
    """The decision rule of docs/demo.md for one interval [low, high] of d = A - B."""
    if rule == ">":
        return "holds" if low > 0 else "fails" if high < 0 else "inconclusive"
    if rule == ">=":
        return "holds" if low > -margin else "fails" if high < 0 else "inconclusive"
    if rule == "not better":
        return "holds" if high < margin else "fails" if low > 0 else "inconclusive"
    raise ValueError(f"unknown rule {rule!r}")


def build_parser() -> argparse.ArgumentParser:
    from .demo import build_parser as demo_parser

    parser = demo_parser()
    parser.prog, parser.description = "vidtempo-demo-paper", __doc__
    parser.set_defaults(output="outputs/paper")
    parser.add_argument("--benchmark-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=["main"], choices=sorted(ARMS))
    parser.add_argument(
        "--arm-train-seeds",
        type=int,
        nargs="+",
        default=None,
        help="training seeds of the arms other than main (default: --train-seeds); claims pair runs of the "
        "same benchmark and training seed",
    )
    parser.add_argument(
        "--tag", default="", help="suffix of the run folders (e.g. for a learning-rate sweep)"
    )
    return parser


def _benchmark(args: argparse.Namespace, seed: int, progress: bool, pooling: str = "l3_irmac"):
    """Demo stages 1-3 for benchmark seed `seed` -> (its args, folder, paths, held-out version, whitened dir)."""
    from . import demo

    bench_args = copy.copy(args)
    bench_args.seed, bench_args.train_seed = seed, None
    bench_args.pooling = pooling
    demo.resolve_args(bench_args)
    out = Path(args.output).resolve() / f"b{seed}"
    out.mkdir(parents=True, exist_ok=True)
    paths, _, heldout, _ = demo._generate(bench_args, out, progress)
    raw_dir, processor, descriptor_model = demo._extract(bench_args, paths, out, progress)
    white_dir = demo._whiten(bench_args, raw_dir, heldout, descriptor_model, processor, out, progress)
    return bench_args, out, paths, heldout, white_dir


def run_grid(args: argparse.Namespace) -> list[dict]:
    """Every (benchmark seed, arm, training seed) run: {"bench", "arm", "train_seed", "per_query", "seconds"}."""
    from . import demo

    progress = not args.no_progress
    runs = []
    for bench in args.benchmark_seeds:
        stages = {}  # pooling -> the benchmark's stages 1-3 with it
        for arm in args.arms:
            pooling = ARMS[arm].get("pooling", args.pooling)
            if pooling not in stages:
                stages[pooling] = _benchmark(args, bench, progress, pooling)
            bench_args, out, paths, heldout, white_dir = stages[pooling]
            seeds = args.train_seeds if arm == "main" else args.arm_train_seeds or args.train_seeds
            for train_seed in seeds:
                arm_args = copy.copy(bench_args)
                vars(arm_args).update(ARMS[arm], train_seed=train_seed)
                name = f"{arm}-t{train_seed}{args.tag}"
                print(f"\n=== benchmark seed {bench}, arm {arm}, training seed {train_seed}", flush=True)
                if arm == "tcav":
                    runs.append(comparator_run(arm_args, out, paths, heldout, white_dir, name, progress))
                    continue
                _, model = demo._train(
                    arm_args, white_dir, paths, out, progress, train_dir=out / f"train-{name}"
                )
                _, _, _, per_query = demo._evaluate(
                    model, white_dir, heldout, paths, out, f"results_{name}.json"
                )
                seconds = json.loads((out / f"train-{name}" / "seconds.json").read_text())["seconds"]
                attention = None
                if arm_args.aggregator == "transformer":
                    manifest = json.loads(paths.manifest.read_text())
                    attention = generic_attention(
                        model, white_dir, manifest, heldout["queries"] + heldout["database"]
                    )
                runs.append({"bench": bench, "arm": arm, "train_seed": train_seed, "per_query": per_query,
                             "train_seconds": seconds, "attention": attention})  # fmt: skip
    return runs


def comparator_run(args, out: Path, paths, heldout: dict, white_dir: Path, name: str, progress: bool) -> dict:
    """TCA_v: the main arm's TCA of the same training seed (trained first if missing), frozen; a comparator
    trained on its frame embeddings of the training pairs (`train_comparator`, ViSiL's loss); held-out mAP
    of the comparator similarity. A finished comparator run is reused."""
    from transformers import AutoModel

    from vidtempo.evaluation.tca_eval import embed_folder, evaluate_embeddings
    from vidtempo.training.options import ComparatorTrainConfig
    from vidtempo.training.train_comparator import train_comparator

    from . import demo

    main_dir = out / f"train-main-t{args.train_seed}{args.tag}"
    _, tca = demo._train(args, white_dir, paths, out, progress, train_dir=main_dir)
    train_dir = out / f"train-{name}"
    if not (train_dir / "model" / "model.safetensors").is_file():
        started = time.perf_counter()
        num_pairs = len(json.loads(Path(paths.train_pairs).read_text())["video_pairs"])
        train_comparator(ComparatorTrainConfig(
            descriptors=str(white_dir), pairs=str(paths.train_pairs), tca_model=str(main_dir / "model"),
            output_dir=str(train_dir), epochs=COMPARATOR_EPOCHS, batch_size=min(16, max(2, num_pairs // 2)),
            seed=args.train_seed, force=True, cpu=True,
        ))  # fmt: skip
        demo._mark(train_dir / "seconds.json", {"seconds": time.perf_counter() - started})
    comparator = AutoModel.from_pretrained(train_dir / "model").eval()
    ids = list(dict.fromkeys(heldout["queries"] + heldout["database"]))
    embedded = embed_folder(tca, white_dir, ids=ids, progress=False)
    result = evaluate_embeddings(embedded, "fivr", "comparator", annotation=paths.annotation, version="synthetic",
                                 comparator=comparator)  # fmt: skip
    seconds = json.loads((train_dir / "seconds.json").read_text())["seconds"]
    return {"bench": args.seed, "arm": "tcav", "train_seed": args.train_seed, "train_seconds": seconds,
            "per_query": {TCA_V: {"per_query": result["per_query"], "seconds": None}}, "attention": None}  # fmt: skip


def _aps(run: dict, row: str, task: str = TASK) -> dict:
    return run["per_query"][row]["per_query"][task]


def claim_rows(runs: list[dict]) -> list[dict]:
    """Each claim of `CLAIMS` whose arms were run: d, its paired bootstrap interval and the verdict."""
    from .ablation import paired_bootstrap_difference

    rows = []
    for claim, paper, rule, (arm_a, row_a), (arm_b, row_b) in CLAIMS:
        by_key = {(r["bench"], r["train_seed"]): r for r in runs if r["arm"] == arm_a}
        pairs = [(by_key[(r["bench"], r["train_seed"])], r) for r in runs if r["arm"] == arm_b
                 and (r["bench"], r["train_seed"]) in by_key]  # fmt: skip
        if not pairs:
            rows.append({"claim": claim, "paper": paper, "verdict": "not run"})
            continue
        d, low, high = paired_bootstrap_difference(
            [_aps(a, row_a) for a, _ in pairs],
            [_aps(b, row_b) for _, b in pairs],
            [a["bench"] for a, _ in pairs],
        )
        rows.append({"claim": claim, "paper": paper, "rule": rule, "d": d, "ci95": [low, high],
                     "verdict": verdict(rule, low, high), "runs": len(pairs),
                     "a": float(np.mean([np.mean(list(_aps(a, row_a).values())) for a, _ in pairs])),
                     "b": float(np.mean([np.mean(list(_aps(b, row_b).values())) for _, b in pairs]))})  # fmt: skip
    rows += [{"claim": c, "paper": p, "verdict": "not run", "why": why} for c, p, why in NOT_RUN]
    return rows


def cascade_row(runs: list[dict]) -> dict | None:
    """The cascade's share of TCA_f's DSVR mAP (bootstrap interval) and the measured ranking speed-up."""
    from .ablation import bootstrap_ci

    main = [r for r in runs if r["arm"] == "main"]
    if not main:
        return None
    share = [
        np.mean(list(_aps(r, CASCADE_ROW).values())) / np.mean(list(_aps(r, TCA_F).values())) for r in main
    ]
    speed = [r["per_query"][TCA_F]["seconds"] / r["per_query"][CASCADE_ROW]["seconds"] for r in main]
    ratios = np.array([[_aps(r, CASCADE_ROW)[q] - _aps(r, TCA_F)[q] for q in sorted(_aps(r, TCA_F))] for r in main
                       if len(_aps(r, TCA_F)) == len(_aps(main[0], TCA_F))])  # fmt: skip
    low, high = bootstrap_ci(ratios) if len(ratios) else (float("nan"), float("nan"))
    return {"share": float(np.mean(share)), "speedup": float(np.mean(speed)), "d_vs_tca_f_ci95": [low, high]}


def generic_attention(model, white_dir: Path, manifest: dict, ids: list[str]) -> dict:
    """Mechanism check: attention each frame receives (mean over heads and attending frames, first layer),
    per generic frame relative to per content frame (1 = no preference), over videos `ids` that have no
    transforms (their frames are their shots, one per second). Also the share of attention generic frames get."""
    import torch

    from ..processing.descriptor_store import load_descriptors

    specs = {v["video_id"]: v for group in manifest["specs"] for v in group}
    ids = [i for i in ids if i in specs and not specs[i]["transforms"]]
    descriptors = load_descriptors(white_dir, ids)
    ratios, shares = [], []
    implementation = model.config._attn_implementation
    model.config._attn_implementation = "eager"  # sdpa returns no attention weights
    for video_id in ids:
        kinds = np.array(
            [s["kind"] == "generic" for s in specs[video_id]["shots"] for _ in range(s["num_frames"])]
        )
        features = np.asarray(descriptors[video_id], dtype=np.float32)
        if len(features) != len(kinds) or kinds.all() or not kinds.any():
            continue
        with torch.no_grad():
            out = model(torch.from_numpy(features)[None], output_attentions=True)
        received = (
            out.attentions[0][0].mean(dim=(0, 1)).numpy()
        )  # [frames]: mean over heads, attending frames
        ratios.append(received[kinds].mean() / received[~kinds].mean())
        shares.append(received[kinds].sum() / received.sum())
    model.config._attn_implementation = implementation
    if not ratios:
        return {"videos": 0}
    return {"videos": len(ratios), "generic_vs_content_per_frame": float(np.mean(ratios)),
            "attention_share_on_generic": float(np.mean(shares))}  # fmt: skip


def format_report(
    claims: list[dict], cascade: dict | None, args: argparse.Namespace, runs: list[dict]
) -> str:
    lines = [f"Paper claims, held-out {TASK} mAP: benchmark seeds {args.benchmark_seeds} x training seeds "
             f"{args.train_seeds}" + (f" (arms other than main: {args.arm_train_seeds})" if args.arm_train_seeds else "")
             + "; d = A - B, [95% paired bootstrap interval]; rule: docs/demo.md", "",
             "| claim | paper | ours: A / B | d [95% interval] | verdict |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in claims:
        if row["verdict"] == "not run":
            lines.append(f"| {row['claim']} | {row['paper']} | not run | | not run |")
            continue
        low, high = row["ci95"]
        lines.append(f"| {row['claim']} | {row['paper']} | {row['a']:.3f} / {row['b']:.3f} ({row['runs']} runs) | "
                     f"{row['d']:+.3f} [{low:+.3f}, {high:+.3f}] | {row['verdict']} |")  # fmt: skip
    if cascade:
        lines.append(f"| cascade share of TCA_f | cascade keeps most of TCA_f's mAP | share {cascade['share']:.3f},"
                     f" ranking speed-up x{cascade['speedup']:.1f} | {cascade['d_vs_tca_f_ci95'][0]:+.3f}, "
                     f"{cascade['d_vs_tca_f_ci95'][1]:+.3f} (cascade - TCA_f) | no rule |")  # fmt: skip
    seconds = {}
    for run in runs:
        seconds.setdefault(run["arm"], []).append(run["train_seconds"])
    lines += [
        "",
        "training seconds per run: " + ", ".join(f"{a} {np.mean(s):.0f}" for a, s in seconds.items()),
    ]
    attention = [
        r["attention"] for r in runs if r["arm"] == "main" and (r.get("attention") or {}).get("videos")
    ]
    if attention:
        ratio = np.mean([a["generic_vs_content_per_frame"] for a in attention])
        share = np.mean([a["attention_share_on_generic"] for a in attention])
        lines.append(f"attention (main arm, held-out videos): a generic frame receives {ratio:.2f}x the attention of a "
                     f"content frame; generic frames get {share:.1%} of all attention")  # fmt: skip
    return "\n".join(lines)


def _body(args: argparse.Namespace) -> int:
    from ..processing.atomic_files import write_json_atomic, write_text_atomic

    runs = run_grid(args)
    claims, cascade = claim_rows(runs), cascade_row(runs)
    report = format_report(claims, cascade, args, runs)
    out = Path(args.output)
    report_name = f"paper{args.tag}"
    write_json_atomic(
        out / f"{report_name}.json", {"claims": claims, "cascade": cascade, "runs": runs}, indent=1
    )
    write_text_atomic(out / f"{report_name}.md", report + "\n")
    print("\n" + report + f"\n\nwrote {out / report_name}.md and .json")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`vidtempo-demo-paper`: exit 0 on success, 2 on a usage error, 1 on a runtime error."""
    return run_command(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())

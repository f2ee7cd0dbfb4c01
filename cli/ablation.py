"""`vidtempo-ablation`: train and evaluate a grid of TCA variants with several seeds; one table with 95% CIs.

    python -m vidtempo.cli.ablation --descriptors outputs/demo/descriptors \\
        --pairs outputs/demo/benchmark/train_pairs.json --annotations outputs/demo/benchmark/annotation.json \\
        --version synthetic --grid aggregator=transformer,lstm,gru,netvlad --grid loss=circle,infonce \\
        --seeds 0 1 2 --set epochs=4 --set hidden_size=256 --output outputs/ablation

Every combination of the `--grid` values (TrainConfig fields) is trained once per seed on the training pairs
(`--set` fixes other TrainConfig fields; `--config` reads them from YAML) and evaluated on the held-out
queries of a FIVR-schema annotation with `--similarity`. A finished run (its `model/` and `metrics.json`) is
reused when its configuration is the same. The table gives, per variant and task, the mAP averaged over seeds, a 95% percentile-bootstrap CI
(queries resampled with replacement, the same resample for every seed: the uncertainty from the choice of
queries) and the standard deviation over seeds. Writes `ablation.md` and `ablation.json` in `--output`.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import types
import typing
from pathlib import Path

import numpy as np

from ..processing.atomic_files import write_json_atomic, write_text_atomic
from ..training.options import TrainConfig
from ._contract import UsageError, add_common_flags, run_command

logger = logging.getLogger(__name__)
BOOTSTRAP_SAMPLES = 2000


def _parse_value(field: dataclasses.Field, text: str):
    kind = typing.get_type_hints(TrainConfig)[field.name]
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    if text.lower() in ("none", "null") and type(None) in options:
        return None
    if bool in options:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{field.name}: expected true/false, got {text!r}")
        return text.lower() in ("true", "1")
    for number in (int, float):
        if number in options:
            try:
                return number(text)
            except ValueError:
                raise ValueError(
                    f"{field.name}: expected a number ({number.__name__}), got {text!r}"
                ) from None
    return text


def parse_assignments(items: list[str], multi: bool) -> dict:
    """`field=value` (or `field=v1,v2,...` when `multi`) -> {field: value or [values]} with TrainConfig types."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"expected FIELD=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in fields:
            raise ValueError(f"{name!r} is not a TrainConfig field (choose from {sorted(fields)})")
        values = [_parse_value(fields[name], v.strip()) for v in text.split(",")] if multi else None
        out[name] = values if multi else _parse_value(fields[name], text.strip())
    return out


def bootstrap_ci(
    per_seed_ap: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95% percentile CI of the mAP (mean over seeds of the mean over queries) with queries resampled.
    `per_seed_ap`: [seeds, queries] APs."""
    rng = np.random.default_rng(seed)
    num_queries = per_seed_ap.shape[1]
    picks = rng.integers(0, num_queries, size=(samples, num_queries))  # [S, Q]
    resampled = per_seed_ap[:, picks].mean(axis=2).mean(axis=0)  # [S]
    low, high = np.percentile(resampled, [2.5, 97.5])
    return float(low), float(high)


def paired_bootstrap_difference(
    runs_a: list[dict], runs_b: list[dict], groups: list, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float, float]:
    """d = mean over runs of (mAP_A - mAP_B) and its 95% paired-bootstrap interval: (d, low, high).
    `runs_a[i]`, `runs_b[i]`: {query: AP} of arm A and arm B in run i (the same queries); `groups[i]`: the
    benchmark of run i. Within each benchmark the queries are resampled with replacement, the same draw for
    all its runs and both arms."""
    if not runs_a or len(runs_a) != len(runs_b) or len(runs_a) != len(groups):
        raise ValueError(
            f"need as many runs of A as of B and groups, got {len(runs_a)}, {len(runs_b)}, {len(groups)}"
        )
    rng = np.random.default_rng(seed)
    diffs, members = {}, {}
    for i, (a, b, group) in enumerate(zip(runs_a, runs_b, groups, strict=True)):
        if set(a) != set(b):
            raise ValueError(f"run {i}: arms A and B were scored on different queries")
        diffs[i] = np.array([a[q] - b[q] for q in sorted(a)], dtype=np.float64)
        members.setdefault(group, []).append(i)
    total = np.zeros(samples)
    for indices in members.values():
        n = len(diffs[indices[0]])
        if any(len(diffs[i]) != n for i in indices):
            raise ValueError("runs of one benchmark must share their queries")
        picks = rng.integers(0, n, size=(samples, n))
        for i in indices:
            total += diffs[i][picks].mean(axis=1)
    resampled = total / len(runs_a)
    point = float(np.mean([d.mean() for d in diffs.values()]))
    low, high = np.percentile(resampled, [2.5, 97.5])
    return point, float(low), float(high)


def variant_name(combo: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in combo.items()) or "default"


def _settings(config: dict | None) -> dict | None:
    """A run's settings without `force` (how it was started, not what it trained)."""
    return None if config is None else {k: v for k, v in config.items() if k != "force"}


def run_ablation(
    base: TrainConfig,
    grid: dict[str, list],
    seeds: list[int],
    annotation: str,
    version: str,
    output: Path,
    similarity: str = "cosine",
    device: str = "cpu",
) -> dict:
    """Train + evaluate every grid combination for every seed; returns {"rows": [...], "tasks": [...]}."""
    from transformers import AutoModel

    from ..evaluation.benchmarks import benchmark_ids
    from ..evaluation.tca_eval import embed_folder, evaluate_embeddings
    from ..training.train_tca import train

    queries, database = benchmark_ids("fivr", annotation, version)
    ids = list(dict.fromkeys(queries + database))
    names = list(grid)
    rows = []
    for values in itertools.product(*(grid[n] for n in names)):
        combo = dict(zip(names, values, strict=True))
        per_seed, runs = [], []
        for seed in seeds:
            run_dir = (
                output / "runs" / variant_name(combo).replace("=", "-").replace(",", "_") / f"seed{seed}"
            )
            config = dataclasses.replace(base, **combo, seed=seed, output_dir=str(run_dir))
            config.validate()
            done = (run_dir / "model" / "model.safetensors").is_file() and (
                run_dir / "metrics.json"
            ).is_file()
            if done and _settings(json.loads((run_dir / "metrics.json").read_text()).get("config")) != (
                _settings(dataclasses.asdict(config))
            ):
                logger.info("%s: finished with another configuration, training again", run_dir)
                done = False
            if not done:
                logger.info("training %s seed %d", variant_name(combo), seed)
                # an unfinished or differently configured run in this folder is replaced
                train(dataclasses.replace(config, force=True))
            metrics = json.loads((run_dir / "metrics.json").read_text())
            model = AutoModel.from_pretrained(run_dir / "model", trust_remote_code=True).eval()
            embeddings = embed_folder(model, base.descriptors, ids=ids, keep_frames=similarity != "cosine",
                                      device=device, progress=False)  # fmt: skip
            result = evaluate_embeddings(
                embeddings, "fivr", similarity, annotation=annotation, version=version
            )
            per_seed.append(result["per_query"])
            losses = metrics["losses"]
            runs.append({"seed": seed, "metrics": result["metrics"], "first_loss": losses[0] if losses else None,
                         "last_loss": losses[-1] if losses else None, "steps": metrics["global_step"]})  # fmt: skip
        tasks = list(per_seed[0])
        row = {"variant": variant_name(combo), "combo": combo, "runs": runs, "tasks": {}}
        for task in tasks:
            query_ids = sorted(per_seed[0][task])
            if not query_ids:
                continue
            aps = np.array([[ap[task][q] for q in query_ids] for ap in per_seed], dtype=np.float64)  # [S, Q]
            low, high = bootstrap_ci(aps)
            seed_maps = aps.mean(axis=1)
            row["tasks"][task] = {"map": float(seed_maps.mean()), "ci95": [low, high],
                                  "seed_std": float(seed_maps.std(ddof=1)) if len(seeds) > 1 else 0.0,
                                  "queries": len(query_ids)}  # fmt: skip
        rows.append(row)
    return {"rows": rows, "seeds": seeds, "similarity": similarity, "annotation": str(annotation),
            "version": version, "bootstrap_samples": BOOTSTRAP_SAMPLES,
            "base_config": dataclasses.asdict(base)}  # fmt: skip


def format_table(report: dict) -> str:
    tasks = list(report["rows"][0]["tasks"]) if report["rows"] else []
    lines = [f"TCA ablation: mAP ({report['similarity']}) over seeds {report['seeds']}, [95% bootstrap CI over "
             "queries] ± std over seeds", "",
             "| variant | " + " | ".join(tasks) + " | loss first→last |",
             "| --- | " + " | ".join("---" for _ in tasks) + " | --- |"]  # fmt: skip
    for row in report["rows"]:
        cells = []
        for task in tasks:
            t = row["tasks"][task]
            cells.append(f"{t['map']:.3f} [{t['ci95'][0]:.3f}, {t['ci95'][1]:.3f}] ±{t['seed_std']:.3f}")
        first = np.mean([r["first_loss"] for r in row["runs"]])
        last = np.mean([r["last_loss"] for r in row["runs"]])
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + f" | {first:.3f}→{last:.3f} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidtempo-ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--descriptors", required=True, help="descriptor folder (whitened)")
    parser.add_argument("--pairs", required=True, help="training pairs (VCDB-format JSON, JSON list or CSV)")
    parser.add_argument(
        "--annotations", required=True, help="FIVR-schema annotation with the held-out queries"
    )
    parser.add_argument("--version", default="synthetic", help="version inside --annotations")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="a TrainConfig field and its values (repeat for a grid)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="fix a TrainConfig field"
    )
    parser.add_argument("--config", help="YAML of TrainConfig fields (under --set)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--similarity", default="cosine", choices=["cosine", "chamfer", "symmetric_chamfer"])
    parser.add_argument("--output", default="outputs/ablation")
    parser.add_argument("--device", default="cpu")
    add_common_flags(parser)
    parser.set_defaults(log_level="info")
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        fixed = {"report_to": "none", "progress": False, "cpu": args.device == "cpu", "save_every": 0}
        fixed |= parse_assignments(args.set, multi=False)
        fixed |= {"descriptors": args.descriptors, "pairs": args.pairs}
        base = TrainConfig.from_yaml(args.config, **fixed) if args.config else TrainConfig(**fixed)
        grid = parse_assignments(args.grid, multi=True)
        base.validate()
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from error
    output = Path(args.output)
    report = run_ablation(base, grid, args.seeds, args.annotations, args.version, output, args.similarity,
                          args.device)  # fmt: skip
    table = format_table(report)
    write_json_atomic(output / "ablation.json", report, indent=2)
    write_text_atomic(output / "ablation.md", table + "\n")
    print(table)
    print(f"\nwrote {output / 'ablation.md'} and {output / 'ablation.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


__all__ = [
    "bootstrap_ci",
    "format_table",
    "main",
    "paired_bootstrap_difference",
    "parse_assignments",
    "run_ablation",
]

if __name__ == "__main__":
    raise SystemExit(main())

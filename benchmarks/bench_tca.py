"""TCA encoder speed: our `TCAModel` (sdpa and eager attention) vs torch's `nn.TransformerEncoderLayer`
(same math, fused fast path in eval) vs the `torch.matmul` peak of this machine, all four alternated over
interleaved rounds (best of each; `_timing.measured`, the 2048^3 matmul is the reference).

    .venv/bin/python benchmarks/bench_tca.py [--quick]

Writes `docs/bench/tca.md`. Paper configuration (1024-d input and model, 8 heads, feed-forward 2048,
one layer), batches of padded videos, inference (`torch.no_grad`, eval mode).
"""

import argparse
import datetime
import os
import platform
from pathlib import Path

import torch
from _timing import conditions_line, measured, square_matmul_task, write_report  # noqa: E402  (sibling module: scripts run from this folder)
from torch import nn

from vidtempo.modeling import TCAConfig, TCAModel

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "bench" / "tca.md"


def encoder_flops(batch: int, frames: int, hidden: int, intermediate: int, layers: int) -> float:
    """Multiply-adds x2 of one forward: projections 8FH^2, attention 4F^2H, feed-forward 4FHI (per video, layer)."""
    per_video = 8 * frames * hidden**2 + 4 * frames**2 * hidden + 4 * frames * hidden * intermediate
    return float(batch * layers * per_video)


def torch_reference(model: TCAModel) -> nn.TransformerEncoder:
    config = model.config
    layer = nn.TransformerEncoderLayer(
        config.hidden_size,
        config.num_attention_heads,
        config.intermediate_size,
        dropout=0.0,
        batch_first=True,
    )
    encoder = nn.TransformerEncoder(layer, config.num_hidden_layers, enable_nested_tensor=False).eval()
    for ours, theirs in zip(model.encoder.layers, encoder.layers):
        attn = ours.self_attn
        with torch.no_grad():
            theirs.self_attn.in_proj_weight.copy_(
                torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
            )
            theirs.self_attn.in_proj_bias.copy_(
                torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias])
            )
            theirs.self_attn.out_proj.load_state_dict(attn.out_proj.state_dict())
            theirs.linear1.load_state_dict(ours.mlp.fc1.state_dict())
            theirs.linear2.load_state_dict(ours.mlp.fc2.state_dict())
            theirs.norm1.load_state_dict(ours.layer_norm1.state_dict())
            theirs.norm2.load_state_dict(ours.layer_norm2.state_dict())
    return encoder


@torch.no_grad()
def measure(sdpa, eager, reference, features, mask, rounds: int, peak_task) -> tuple[dict, float]:
    """Interleaved `measured` rounds of the three encoders and the peak matmul; and ours vs torch's max diff."""
    padding = mask == 0
    difference = sdpa(features, mask).last_hidden_state - reference(features, src_key_padding_mask=padding)
    error = difference[mask.bool()].abs().max().item()
    result = measured(
        {
            "matmul peak": peak_task,
            "TCAModel sdpa": lambda: sdpa(features, mask),
            "TCAModel eager": lambda: eager(features, mask),
            "nn.TransformerEncoder": lambda: reference(features, src_key_padding_mask=padding),
        },
        rounds,
        "matmul peak",
    )
    return result, error


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller batches and fewer repeats (a smoke run)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rounds = 3 if args.quick else 5
    shapes = [(4, 32), (8, 64)] if args.quick else [(16, 32), (8, 128), (4, 256)]

    config = TCAConfig(hidden_dropout_prob=0.0)  # paper sizes
    sdpa = TCAModel(config).eval()
    eager = TCAModel(TCAConfig(hidden_dropout_prob=0.0, attn_implementation="eager")).eval()
    eager.load_state_dict(sdpa.state_dict())
    reference = torch_reference(sdpa)
    peak_task, peak_flops = square_matmul_task(2048)

    rows, conditions = [], []
    for batch, frames in shapes:
        features = torch.randn(batch, frames, config.input_size)
        lengths = torch.randint(frames // 2, frames + 1, (batch,))
        lengths[0] = frames
        mask = (torch.arange(frames)[None] < lengths[:, None]).long()
        flops = encoder_flops(
            batch, frames, config.hidden_size, config.intermediate_size, config.num_hidden_layers
        )
        result, error = measure(sdpa, eager, reference, features, mask, rounds, peak_task)
        times = result["best"]
        peak = peak_flops / times.pop("matmul peak") / 1e9  # GFLOP/s, same rounds
        for name, seconds in times.items():
            rows.append(
                f"| {batch}x{frames} | {name} | {seconds * 1e3:.1f} | {batch * frames / seconds:,.0f} | "
                f"{flops / seconds / 1e9:.1f} | {flops / seconds / 1e9 / peak:.0%} | "
                f"{times['nn.TransformerEncoder'] / seconds:.2f} | {error:.1e} |"
            )
        conditions.append(
            f"- {batch}x{frames}: peak {peak:.1f} GFLOP/s; " + conditions_line(result, "matmul peak") + "."
        )
        print(rows[-3:], conditions[-1], flush=True)

    lines = [
        "## TCA encoder (bench_tca.py)",
        "",
        f"Machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(torch threads {torch.get_num_threads()}), torch {torch.__version__}; "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC{' (--quick)' if args.quick else ''}.",
        "",
        f"Paper configuration (input/hidden 1024, 8 heads, feed-forward 2048, 1 layer), float32 inference on "
        f"padded batches (lengths uniform in [F/2, F]). {rounds} interleaved rounds per shape (the three "
        "encoders and a `torch.matmul` 2048^3, the peak reference, alternated), best of each; the share of the "
        "matmul peak is against that shape's own rounds. GFLOP/s counts the dense work including padding. `vs torch` is nn.TransformerEncoder time / ours "
        "(>1 = ours faster). `max diff` is the largest |ours - torch| over valid frames (same weights).",
        "",
        "| batch x frames | implementation | ms / batch | frames / s | GFLOP/s | of matmul peak | vs torch | max diff |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Conditions per shape (matmul peak in the same rounds, load average, spread of the reference):",
        "",
        *conditions,
        "",
    ]
    write_report(args.output, lines)


if __name__ == "__main__":
    main()

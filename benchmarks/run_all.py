"""`make bench`: run every `benchmarks/bench_*.py`, then gather `docs/bench/*.md` into `docs/benchmarks.md`.

Each benchmark script measures one area and writes its own section file `docs/bench/<area>.md` (machine, date,
tables of ratios measured in one run). A failing benchmark is reported and the others still run.
Usage: `python benchmarks/run_all.py [--quick] [--only NAME ...] [--collect-only]`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from vidtempo.processing.atomic_files import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"
SECTIONS = ROOT / "docs" / "bench"
OUTPUT = ROOT / "docs" / "benchmarks.md"

HEADER = """# Benchmarks

Produced by `make bench` (`benchmarks/run_all.py`), which runs every `benchmarks/bench_*.py`; each
section below was written by one script, with the machine and the date of its run. Speed and memory targets live
here, never in timed unit tests. Ratios measured within one run (ours vs a naive baseline vs the `torch.matmul`
peak of the same machine) are the numbers to compare; absolute times depend on the machine. Every timed
comparison alternates ours, the naive baseline and a `torch.matmul` reference over interleaved rounds (best of
each; `benchmarks/_timing.py` `measured`) and states the load average before and after and the reference's
slowest / fastest round; beyond 1.5x the section says **Disturbed run** and its ratios are not to be quoted.
Measurements with no reference (wall time of a whole run, peak RSS) say so and carry the load average.
"""


def collect() -> None:
    """Concatenate the section files into docs/benchmarks.md (atomic write)."""
    parts, disturbed = [HEADER], []
    for section in sorted(SECTIONS.glob("*.md")):
        text = section.read_text()
        parts.append(text.strip() + "\n")
        if "Disturbed run" in text:
            disturbed.append(section.stem)
    write_text_atomic(OUTPUT, "\n".join(parts))
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(parts) - 1} sections)")
    if disturbed:
        print(f"sections with a disturbed measurement: {', '.join(disturbed)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="pass --quick to every benchmark (smaller sizes)"
    )
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names, e.g. search train")
    parser.add_argument("--collect-only", action="store_true", help="only rebuild docs/benchmarks.md")
    args = parser.parse_args(argv)
    failed: list[str] = []
    if not args.collect_only:
        scripts = sorted(BENCH_DIR.glob("bench_*.py"))
        if args.only:
            scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
        for script in scripts:
            command = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
            print(f"== {script.name}", flush=True)
            start = time.perf_counter()
            result = subprocess.run(command, cwd=ROOT)
            print(
                f"== {script.name}: exit {result.returncode} in {time.perf_counter() - start:.0f} s",
                flush=True,
            )
            if result.returncode != 0:
                failed.append(script.name)
    collect()
    if failed:
        print(f"failed benchmarks: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Embedded synthetic benchmarks: procedurally rendered videos with FIVR-style and caption annotations.

- `generate_benchmark` (`neardup`): near-duplicate retrieval benchmark, FIVR schema + training pairs.
- `generate_temporal_benchmark` (`temporal_benchmark`): the issue-20 benchmark: long 1-fps videos of real photos,
  partial overlaps, generic frames and look-alike shots (same layout as `generate_benchmark`).
- `generate_captioned_videos` (`captions`): timed-event captions and Charades-STA grounding spans.
Both draw with one renderer (`renderer`) and write real files with `video_writer`.
"""

from .captions import generate_captioned_videos
from .neardup import BenchmarkPaths, generate_benchmark
from .temporal_benchmark import generate_temporal_benchmark

__all__ = ["BenchmarkPaths", "generate_benchmark", "generate_captioned_videos", "generate_temporal_benchmark"]

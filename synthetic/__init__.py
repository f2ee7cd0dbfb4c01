"""Embedded synthetic benchmarks: procedurally rendered videos with FIVR-style and caption annotations.

- `generate_benchmark` (`neardup`): near-duplicate retrieval benchmark, FIVR schema + training pairs.
- `generate_captioned_videos` (`captions`): timed-event captions and Charades-STA grounding spans.
Both draw with one renderer (`renderer`) and write real files with `video_writer`.
"""

from .captions import generate_captioned_videos
from .neardup import BenchmarkPaths, generate_benchmark

__all__ = ["BenchmarkPaths", "generate_benchmark", "generate_captioned_videos"]

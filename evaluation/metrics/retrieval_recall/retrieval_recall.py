"""`evaluate` metric: text->video and video->text retrieval R@1/5/10, MdR, MnR (MSR-VTT protocol).

Load with ``evaluate.load("<path>/evaluation/metrics/retrieval_recall")``. One example per text query:
``predictions`` = its similarity to every video (row i of the [N, N] text-video matrix), ``references`` =
the index of its ground-truth video. Rows must form a square matrix whose ground truth is the diagonal
(the MSR-VTT 1k-A layout: text i describes video i). The math is `vidtempo.evaluation.text_video_retrieval`.
"""

import datasets
import evaluate
import numpy as np

# text_video_retrieval.py imports its sibling degenerate.py; naming it here makes evaluate.load copy it too (no comment on import lines:
# evaluate reads a trailing comment as a download URL)
from .degenerate import warn_if_mostly_tied
from .text_video_retrieval import retrieval_metrics

_COPIED_SIBLINGS = (warn_if_mostly_tied,)  # keeps the degenerate.py import (and so evaluate's copy of it)

_DESCRIPTION = """Text-video retrieval: R@K = 100*mean(rank < K) with 0-based rank, MdR = median(rank)+1,
MnR = mean(rank)+1, for text->video (rows) and video->text (columns). Ties: the expectation over a random
order of the tied candidates (`ties="mean"`, default; constant scores give chance), ground truth first among
equals ("optimistic", as CLIP4Clip) or last ("pessimistic")."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of lists of float, row i = similarity of text i to every video.
    references: list of int, the ground-truth video of each text (must be i for row i).
    ties: "mean" (default) | "optimistic" | "pessimistic".
Returns:
    t2v_R@1, t2v_R@5, t2v_R@10, t2v_MdR, t2v_MnR and the same with the v2t_ prefix.
Example:
    >>> metric = evaluate.load("evaluation/metrics/retrieval_recall")
    >>> metric.compute(predictions=[[0.9, 0.1], [0.8, 0.2]], references=[0, 1])["t2v_R@1"]
    50.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RetrievalRecall(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Value("int64"),
                }
            ),
        )

    def _compute(self, predictions, references, ties="mean"):
        sim = np.asarray(predictions, dtype=np.float64)
        refs = np.asarray(references)
        if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
            raise ValueError(f"predictions must form a square [N, N] matrix, got shape {sim.shape}")
        if not np.array_equal(refs, np.arange(len(refs))):
            # reorder columns so that each text's ground truth sits on the diagonal
            if sorted(refs.tolist()) != list(range(len(refs))):
                raise ValueError(
                    "references must be a permutation of 0..N-1 (one ground-truth video per text)"
                )
            sim = sim[:, refs]
        out = retrieval_metrics(sim, ties=ties)
        return {f"{direction}_{k}": v for direction, values in out.items() for k, v in values.items()}

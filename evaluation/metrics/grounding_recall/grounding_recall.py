"""`evaluate` metric: temporal grounding R@n,IoU=m (IoU strictly greater than m) and mIoU.

Load with ``evaluate.load("<path>/evaluation/metrics/grounding_recall")``. One example per query:
``predictions`` = its ranked moments after NMS, flattened ``[s1, e1, s2, e2, ...]`` (best first),
``references`` = its ground-truth ``[start, end]``. The math is `vidtempo.modeling.grounding_scoring`
(symlinked here; a copy of this folder holds it as a file).
"""

import datasets
import evaluate
import numpy as np

from .grounding_scoring import DEFAULT_THRESHOLDS, DEFAULT_TOPN, grounding_metrics

_DESCRIPTION = """Temporal grounding: R@n,IoU=m is the percentage of queries where one of the top-n predicted
moments has IoU > m (strictly) with the ground truth; mIoU is the mean IoU (percent) of the top-1 moment."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of lists of float, ranked moments flattened as [s1, e1, s2, e2, ...].
    references: list of [start, end].
    top_n: n values (default (1, 5)); thresholds: m values (default (0.3, 0.5, 0.7)).
Returns:
    "R@n,IoU=m" for every pair, and "mIoU".
Example:
    >>> metric = evaluate.load("evaluation/metrics/grounding_recall")
    >>> metric.compute(predictions=[[0.0, 2.0]], references=[[0.0, 4.0]], thresholds=(0.5,), top_n=(1,))
    {'R@1,IoU=0.5': 0.0, 'mIoU': 50.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GroundingRecall(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Sequence(datasets.Value("float64")),
                }
            ),
        )

    def _compute(self, predictions, references, top_n=DEFAULT_TOPN, thresholds=DEFAULT_THRESHOLDS):
        for q, pred in enumerate(predictions):
            if len(pred) % 2:
                raise ValueError(f"predictions[{q}] must hold (start, end) pairs, got {len(pred)} numbers")
        moments = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in predictions]
        return grounding_metrics(moments, references, top_n=top_n, thresholds=thresholds)

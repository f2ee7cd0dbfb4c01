"""`vidtempo-eval-locvtp`: LocVTP text-video retrieval and grounding evaluation (moves here from `evaluation/locvtp_eval.py`; see `cli/_contract.py`)."""

from ..evaluation.locvtp_eval import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())

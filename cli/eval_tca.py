"""`vidtempo-eval`: TCA retrieval evaluation on FIVR / CC_WEB_VIDEO / EVVE / VCDB (moves here from `evaluation/tca_eval.py`; see `cli/_contract.py`)."""

from ..evaluation.tca_eval import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())

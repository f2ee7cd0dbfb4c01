"""`vidtempo-train-tca`: TCA training (moves here from `training/train_tca.py`; see `cli/_contract.py`)."""

from ..training.train_tca import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())

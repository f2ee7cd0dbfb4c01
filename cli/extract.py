"""`vidtempo-extract`: frame descriptors from videos, and fit-pca (moves here from `processing/extract.py`; see `cli/_contract.py`)."""

from ..processing.extract import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())

"""vidtempo.evaluation."""

"""vidtempo.training."""

"""vidtempo.processing."""

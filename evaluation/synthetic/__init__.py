"""Embedded synthetic benchmarks: procedurally rendered videos with FIVR-style and caption annotations."""

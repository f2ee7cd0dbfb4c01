"""evaluate metric modules of vidtempo."""

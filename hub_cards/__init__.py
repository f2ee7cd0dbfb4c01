"""vidtempo.hub_cards."""

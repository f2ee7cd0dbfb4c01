"""vidtempo's console scripts: the application layer. Every module here parses arguments, calls the library
(`modeling`, `processing`, `training`, `evaluation`, `search`, `synthetic`, `hub_cards`), prints, and chooses
the exit code through `_contract.run_command`. Nothing in the library imports from here."""

"""Search at scale: `VideoIndex` (`index`: FAISS over video embeddings, memory-mapped frames, chamfer
re-ranking), `build_index` (`build`: embed a descriptor folder into an index, refusing to mix embedding
spaces) and `search_folder` (`query`). The commands are `cli/index.py` and `cli/search.py`."""

"""Search at scale: `VideoIndex` (FAISS over video embeddings, memory-mapped frames, chamfer re-ranking)."""

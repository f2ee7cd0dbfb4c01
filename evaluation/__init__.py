"""vidtempo.evaluation: retrieval benchmarks, embedding for evaluation, and search at scale.

Modules (imported on demand, so that importing a submodule stays light):

* `ap` — average precision (FIVR/CC_WEB definition and EVVE's trapezoidal one), FIVR task mAP.
* `benchmarks` — the packaged FIVR / CC_WEB_VIDEO / EVVE / VCDB annotations (`load_benchmark`) and the
  protocols `evaluate_fivr`, `evaluate_cc_web`, `evaluate_evve`, `evaluate_benchmark`.
* `embedding` — `embed_descriptors` (full-length, deterministic) and `compute_similarities`
  (cosine, chamfer, symmetric_chamfer, cascade).
* `cli` — `vidtempo-eval`; `evaluate_embeddings`, `embed_folder`, `load_model` for in-process use.
* `index`, `index_cli` — `VideoIndex` (FAISS + memory-mapped frames, chamfer re-ranking),
  `vidtempo-index` and `vidtempo-search`.
* `metrics/video_map`, `metrics/fivr_map` — `evaluate` metric modules (`evaluate.load(path)`).
"""

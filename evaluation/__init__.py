"""vidtempo.evaluation: metrics and published protocols only (imported on demand, so a submodule stays light).

* `ap`: average precision (FIVR/CC_WEB definition and EVVE's trapezoidal one), the FIVR label/task table,
  FIVR task mAP.
* `benchmarks`: the packaged FIVR / CC_WEB_VIDEO / EVVE / VCDB annotations (`load_benchmark`) and the
  protocols `evaluate_fivr`, `evaluate_cc_web`, `evaluate_evve`, `evaluate_benchmark`.
* `embedding`: `embed_descriptors` (full-length, deterministic) and `compute_similarities`
  (cosine, chamfer, symmetric_chamfer, cascade).
* `tca_eval`: TCA retrieval evaluation of a descriptor folder (`evaluate_folder`, `evaluate_embeddings`,
  `embed_folder`); its command is `cli/eval_tca.py`.
* `similarities`: the similarity names (light: the CLIs' choices).
* `text_video_retrieval`, `grounding`, `locvtp_eval`: LocVTP's text–video retrieval and moment grounding
  (`evaluate_locvtp`; its command is `cli/eval_locvtp.py`).
* `degenerate`: the one home of the tied/constant-score warnings.
* `metrics/`: `evaluate` metric modules (`evaluate.load(path)`).
"""

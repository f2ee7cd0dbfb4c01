"""TCA_v in evaluation: `--similarity comparator`, the comparator as the cascade's re-ranker, NetVLAD errors."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from factories import EVAL_DIM as DIM
from factories import FIXTURES as _FIXTURES
from factories import tiny_collection
from safetensors.torch import load_file

from vidtempo.cli import eval_tca
from vidtempo.evaluation.benchmarks import evaluate_fivr
from vidtempo.evaluation.embedding import CASCADE_OFFSET, compute_similarities, embed_descriptors
from vidtempo.modeling import TCAComparatorModel, TCAConfig, TCAModel
from vidtempo.processing.descriptor_store import write_descriptors

FIXTURES = _FIXTURES / "dns_comparator"


def reference_score(weights: dict, query: np.ndarray, target: np.ndarray) -> float:
    """DnS's per-pair score written with plain torch ops, short videos repeated to 4 frames (DnS's rule)."""
    q, t = torch.from_numpy(query).double(), torch.from_numpy(target).double()
    while q.shape[0] < 4:
        q = torch.cat([q, q])
    while t.shape[0] < 4:
        t = torch.cat([t, t])
    x = (q @ t.T)[None, None]
    w = {k: v.double() for k, v in weights.items()}
    for i in (1, 2, 3):
        x = F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1)), w[f"conv{i}.weight"], w[f"conv{i}.bias"]))
        x = F.max_pool2d(x, 2, 2) if i < 3 else x
    x = F.conv2d(x, w["fconv.weight"], w["fconv.bias"])[0, 0].clamp(-1, 1)
    return float(x.max(dim=1).values.mean())


@pytest.fixture(scope="module")
def comparator_folder(tmp_path_factory):
    weights = load_file(str(FIXTURES / "extra_comparator_bias.safetensors"))
    folder = tmp_path_factory.mktemp("comparator")
    TCAComparatorModel.from_dns_state_dict(weights).save_pretrained(folder)
    return weights, folder


def test_comparator_and_cascade_rerank_against_per_pair_reference(comparator_folder):
    weights, folder = comparator_folder
    comparator = TCAComparatorModel.from_pretrained(folder).eval()
    descriptors, _ = tiny_collection(seed=2)  # 3..9 frames: some below the comparator's minimum of 4
    assert min(v.shape[0] for v in descriptors.values()) < 4
    embeddings = embed_descriptors(None, descriptors, progress=False)
    queries, database = embeddings.subset(["q0", "q1"]), embeddings.subset([k for k in descriptors if k[0] != "q"
                                                                            or "_" in k])  # fmt: skip
    scores = compute_similarities(queries, database, "comparator", comparator=comparator)
    for i, q in enumerate(queries.ids):
        for j, d in enumerate(database.ids):
            expected = reference_score(weights, descriptors[q].astype(np.float32), descriptors[d])
            assert scores[i, j] == pytest.approx(expected, abs=1e-5), (q, d)
    cosine = compute_similarities(queries, database, "cosine")
    cascade = compute_similarities(queries, database, "cascade", cascade_depth=3, comparator=comparator,
                                   cascade_rerank="comparator")  # fmt: skip
    for i in range(len(queries)):
        top = set(cosine[i].topk(3).indices.tolist())
        for j in range(len(database)):
            expected = scores[i, j] if j in top else cosine[i, j] - CASCADE_OFFSET
            assert cascade[i, j] == pytest.approx(float(expected), abs=1e-5)
    with pytest.raises(ValueError, match="TCAComparatorModel"):
        compute_similarities(queries, database, "comparator")


def test_cli_similarity_comparator_end_to_end(tmp_path, comparator_folder, capsys):
    weights, folder = comparator_folder
    descriptors, fivr = tiny_collection(seed=1)
    features = write_descriptors(tmp_path / "features", descriptors, shard_size=4)
    annotation = tmp_path / "fivr.json"
    annotation.write_text(json.dumps(fivr))
    argv = ["--benchmark", "fivr", "--annotations", str(annotation), "--version", "tiny", "--features", str(features),
            "--model", "none", "--no-progress", "--output", str(tmp_path / "run")]  # fmt: skip
    assert eval_tca.main([*argv, "--similarity", "comparator"]) == 2
    assert "needs --comparator" in capsys.readouterr().err
    assert eval_tca.main([*argv, "--similarity", "comparator", "--comparator", str(folder)]) == 0
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    queries, database = fivr["versions"]["tiny"]["queries"], fivr["versions"]["tiny"]["database"]
    stored = {k: v.astype(np.float16).astype(np.float32) for k, v in descriptors.items()}
    sims = {
        q: {d: reference_score(weights, stored[q], stored[d]) for d in database if d != q} for q in queries
    }
    expected = evaluate_fivr(sims, fivr, "tiny")
    assert result["metrics"] == pytest.approx(expected["metrics"], abs=1e-6)
    assert (
        result["similarity"] == "comparator"
        and result["eval_results"][0]["metric_name"] == "DSVR (comparator)"
    )


def test_netvlad_model_has_no_frame_level_similarity():
    model = TCAModel(TCAConfig(input_size=DIM, hidden_size=DIM, num_attention_heads=2, aggregator="netvlad",
                               netvlad_clusters=4)).eval()  # fmt: skip
    descriptors, _ = tiny_collection()
    with pytest.raises(ValueError, match="no frame embeddings"):
        embed_descriptors(model, descriptors, keep_frames=True, progress=False)
    embeddings = embed_descriptors(model, descriptors, keep_frames=False, progress=False)
    assert embeddings.video_embeds.shape == (len(descriptors), DIM)

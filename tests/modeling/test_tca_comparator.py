"""TCA_v comparator against the DnS authors' own outputs (tests/fixtures/dns_comparator/, see its README)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from factories import FIXTURES as _FIXTURES
from isolation import BLOCK_VIDTEMPO
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModel

from vidtempo.modeling import TCAComparatorConfig, TCAComparatorModel, repeat_to_min_frames

FIXTURES = _FIXTURES / "dns_comparator"
SHA256 = {
    "comparator.safetensors": "7c78d4e147bb42ca386d526ca32300f4ac9ee67dd4536e76ceb2450a45c4f806",
    "cases.safetensors": "2758d278286a2fe564748f9050c5689e075dbfb3c7405e3395ccf1bbfe78205b",
    "extra_comparator_bias.safetensors": "d2902764d622dd25183cf733ff4ff63ba41029ed1c31e4b0686a1ee23ba2e37d",
    "extra_cases_bias.safetensors": "79b5e0c28461ea73e0adbe4f1aaa1940e2696ebdaa8527957e43c5f09277f1ce",
}
PAIRS = [("comparator.safetensors", "cases.safetensors"),
         ("extra_comparator_bias.safetensors", "extra_cases_bias.safetensors")]  # fmt: skip


def _load(name: str) -> dict[str, torch.Tensor]:
    path = FIXTURES / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == SHA256[name], f"{path}: sha256 {digest} is not the pinned one"
    return load_file(str(path))


def _case_ids(cases: dict[str, torch.Tensor]) -> list[int]:
    return sorted(int(k.split("_")[1]) for k in cases if k.startswith("sim_"))


def max_fixture_difference() -> dict[str, float]:
    """Max |ours - DnS| over every fixture output, per (file, dtype); used by the test and the report."""
    result = {}
    for weights_name, cases_name in PAIRS:
        weights, cases = _load(weights_name), _load(cases_name)
        for dtype, suffix in ((torch.float32, ""), (torch.float64, "_f64")):
            model = TCAComparatorModel.from_dns_state_dict(weights).to(dtype)
            worst = 0.0
            for i in _case_ids(cases):
                with torch.no_grad():
                    out = model(cases[f"sim_{i}"].to(dtype))
                for ours, theirs in ((out.raw_similarity_map, f"out_{i}"), (out.similarity_map, f"htanh_{i}"),
                                     (out.video_similarity, f"score_{i}")):  # fmt: skip
                    expected = cases[theirs + suffix]
                    assert ours.shape == expected.shape, (theirs, ours.shape, expected.shape)
                    assert ours.dtype == expected.dtype
                    worst = max(worst, float((ours - expected).abs().max()))
            result[f"{cases_name}/{dtype}"] = worst
    return result


def test_reproduces_every_fixture_output():
    diffs = max_fixture_difference()
    print("max |diff| vs DnS:", diffs)
    for key, value in diffs.items():
        assert value <= (1e-12 if "float64" in key else 1e-5), (key, value)


def test_extra_fixture_clamps_and_has_biases():
    # the extra fixture is the one exercising the Hardtanh: our clamp must move some values
    weights, cases = _load("extra_comparator_bias.safetensors"), _load("extra_cases_bias.safetensors")
    model = TCAComparatorModel.from_dns_state_dict(weights)
    with torch.no_grad():
        out = model(cases["sim_2"])
    assert (out.raw_similarity_map.abs() > 1).sum() == 25  # 7 above 1 + 18 below -1 (fixture README)
    assert out.similarity_map.abs().max() <= 1.0


def test_prefixed_checkpoint_keys_and_bad_keys():
    weights = _load("comparator.safetensors")
    prefixed = {"visil_head." + k: v for k, v in weights.items()} | {"fc.weight": torch.zeros(3)}
    a = TCAComparatorModel.from_dns_state_dict(weights)
    b = TCAComparatorModel.from_dns_state_dict(prefixed)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name])
        assert torch.equal(tensor, weights[name])
    with pytest.raises(KeyError, match="conv2.bias"):
        TCAComparatorModel.from_dns_state_dict({k: v for k, v in weights.items() if k != "conv2.bias"})


def _naive(weights: dict[str, torch.Tensor], sim: torch.Tensor) -> torch.Tensor:
    """Independent plain-functional reference (as in the fixture README) for one unpadded [N, M] matrix."""
    x = sim[None, None].double()
    w = {k: v.double() for k, v in weights.items()}
    for i in (1, 2, 3):
        x = F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1)), w[f"conv{i}.weight"], w[f"conv{i}.bias"]))
        if i < 3:
            x = F.max_pool2d(x, 2, 2)
    x = F.conv2d(x, w["fconv.weight"], w["fconv.bias"])[0, 0].clamp(-1, 1)
    return x.max(dim=1).values.mean()


def test_batched_database_equals_one_pair_at_a_time():
    weights = _load("extra_comparator_bias.safetensors")
    model = TCAComparatorModel.from_dns_state_dict(weights).double()
    generator = torch.Generator().manual_seed(0)
    query = F.normalize(torch.randn(13, 8, generator=generator, dtype=torch.float64), dim=-1)
    lengths = [4, 5, 7, 9, 16, 23, 6, 31]
    database = [
        F.normalize(torch.randn(n, 8, generator=generator, dtype=torch.float64), dim=-1) for n in lengths
    ]
    with torch.no_grad():
        batched = model.score_database(query, database, batch_size=3)
        single = [float(_naive(weights, query @ d.T)) for d in database]
    torch.testing.assert_close(batched.double(), torch.tensor(single, dtype=torch.float64), rtol=0, atol=1e-6)
    # padded matrices with query and database lengths give each item's unpadded result
    sims = torch.zeros(2, 20, 30, dtype=torch.float64)
    sims[0, :13, :9] = query @ database[3].T
    sims[1, :6, :23] = (query @ database[5].T)[:6]
    with torch.no_grad():
        out = model(sims, query_lengths=[13, 6], database_lengths=[9, 23])
    expected = [_naive(weights, query @ database[3].T), _naive(weights, (query @ database[5].T)[:6])]
    torch.testing.assert_close(out.video_similarity, torch.stack(expected), rtol=0, atol=1e-12)
    assert out.map_mask[0].sum() == (13 // 4) * (9 // 4) and out.map_mask[1].sum() == (6 // 4) * (23 // 4)


def test_short_videos_error_or_repeat():
    model = TCAComparatorModel(TCAComparatorConfig()).eval()
    with pytest.raises(ValueError, match="at least 4"):
        model(torch.zeros(1, 3, 8))
    with pytest.raises(ValueError, match=r"database videos \[1\] have \[2\] frames"):
        model.score_database(torch.randn(6, 4), [torch.randn(5, 4), torch.randn(2, 4)])
    with pytest.raises(ValueError, match="the query has 3 frames"):
        model.score_database(torch.randn(3, 4), [torch.randn(5, 4)])
    three = torch.arange(3.0)[:, None]
    assert repeat_to_min_frames(three).flatten().tolist() == [0, 1, 2, 0, 1, 2]
    assert repeat_to_min_frames(three[:1]).shape[0] == 4
    scores = model.score_database(
        torch.randn(3, 4), [torch.randn(1, 4), torch.randn(9, 4)], repeat_short=True
    )
    assert scores.shape == (2,) and torch.isfinite(scores).all()


def test_rejects_bad_rank():
    model = TCAComparatorModel(TCAComparatorConfig())
    with pytest.raises(ValueError, match=r"\[batch, N, M\]"):
        model(torch.zeros(8, 8))


def test_dns_init_and_save_load_trust_remote_code(tmp_path):
    model = TCAComparatorModel(TCAComparatorConfig())
    for name, tensor in model.state_dict().items():
        if name.endswith("bias"):
            assert torch.count_nonzero(tensor) == 0, name
    model = TCAComparatorModel.from_dns_state_dict(_load("extra_comparator_bias.safetensors"))
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    reloaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=True)
    assert type(reloaded).__name__ == "TCAComparatorModel"
    sims = torch.rand(2, 9, 12) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded(sims).video_similarity, model(sims).video_similarity, rtol=0, atol=0
        )
    script = BLOCK_VIDTEMPO + (
        "import torch\nfrom transformers import AutoModel\n"
        f"m = AutoModel.from_pretrained({str(tmp_path)!r}, trust_remote_code=True).eval()\n"
        "torch.manual_seed(0)\nprint(repr(float(m(torch.rand(1, 17, 23) * 2 - 1).video_similarity[0])))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    torch.manual_seed(0)
    with torch.no_grad():
        expected = float(model(torch.rand(1, 17, 23) * 2 - 1).video_similarity[0])
    assert float(completed.stdout.strip().splitlines()[-1]) == expected


def test_fixture_metadata_names_the_reference():
    path = FIXTURES / "cases.safetensors"
    with safe_open(str(path), "pt") as handle:
        assert "distill-and-select" in handle.metadata()["fixture"]

"""VideoIndex: FAISS and Milvus (Lite) search equal brute force, the cascade equals full chamfer at full depth,
save/load/resume, and the vidtempo-index / vidtempo-search commands, on both backends."""

import json

import numpy as np
import pytest
import torch

from vidtempo.cli.index import index_main, search_main
from vidtempo.evaluation.embedding import frame_level_similarities
from vidtempo.processing.descriptor_store import write_descriptors
from vidtempo.search.index import VideoIndex

DIM = 16
BACKENDS = ["faiss", "milvus"]


def backend_kwargs(backend):
    """VideoIndex keyword arguments for `backend` (Milvus: embedded Milvus Lite in the index folder)."""
    if backend == "milvus":
        pytest.importorskip("pymilvus")
        return {"backend": "milvus"}
    return {}


def random_collection(n, seed=0, dim=DIM):
    rng = np.random.default_rng(seed)
    ids = [f"v{i:04d}" for i in range(n)]
    frames = [rng.normal(size=(int(rng.integers(2, 8)), dim)).astype(np.float32) for _ in ids]
    frames = [f / np.linalg.norm(f, axis=1, keepdims=True) for f in frames]
    videos = np.stack([f.mean(0) / np.linalg.norm(f.mean(0)) for f in frames])
    return ids, videos, frames


def brute_force(database, queries, k):
    scores = queries.astype(np.float64) @ database.astype(np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.mark.parametrize(
    "index_type,backend",
    [("flat", "blas"), ("flat", "faiss"), ("ivf", "faiss"), ("flat", "milvus"), ("ivf", "milvus")],
)
def test_search_equals_brute_force(tmp_path, index_type, backend):
    ids, videos, _ = random_collection(600)
    kwargs = backend_kwargs("milvus") if backend == "milvus" else {"exact_backend": backend}
    index = VideoIndex(tmp_path, DIM, index_type=index_type, nlist=8, nprobe=8, store_frames=False, **kwargs)
    index.add(ids, videos * 3.0)  # normalised on the way in
    queries = np.random.default_rng(1).normal(size=(20, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    order, scores = brute_force(videos, queries, 10)
    results = index.search(queries, k=10)
    for result, expected_rows, expected_scores in zip(results, order, scores):
        assert result.ids == [ids[r] for r in expected_rows]
        np.testing.assert_allclose(result.scores, expected_scores, atol=1e-5)
    index.add(["late"], queries[:1])  # vectors added after a search are seen by the next one
    index.save()
    reloaded = VideoIndex.load(tmp_path)
    assert reloaded.config["backend" if backend == "milvus" else "exact_backend"] == backend
    assert reloaded.search(queries[:1], k=1)[0].ids == ["late"]


def test_ivfpq_finds_database_vectors(tmp_path):
    ids, videos, _ = random_collection(1200, seed=2, dim=32)
    index = VideoIndex(tmp_path, 32, index_type="ivfpq", nlist=8, nprobe=8, pq_m=8, store_frames=False)
    index.add(ids, videos)
    results = index.search(videos[:100], k=5)
    recall = np.mean([ids[i] in r.ids for i, r in enumerate(results)])
    assert recall >= 0.9  # compressed codes: approximate, but each vector's nearest cell holds itself


@pytest.mark.parametrize("backend", BACKENDS)
def test_cascade_equals_full_chamfer_when_depth_covers_the_database(tmp_path, backend):
    ids, videos, frames = random_collection(120, seed=3)
    index = VideoIndex(tmp_path, DIM, **backend_kwargs(backend))
    index.add(ids, videos, frames)
    stored = [torch.from_numpy(f.astype(np.float16).astype(np.float32)) for f in frames]
    query_ids, query_videos, query_frames = random_collection(5, seed=4)
    full = frame_level_similarities([torch.from_numpy(f) for f in query_frames], stored, "chamfer").numpy()
    results = index.search(query_videos, k=15, rerank=len(ids), query_frames=query_frames)
    for result, row in zip(results, full):
        expected = np.argsort(-row, kind="stable")[:15]
        assert result.reranked and result.ids == [ids[i] for i in expected]
        np.testing.assert_allclose(result.scores, row[expected], atol=1e-6)
    # a shallow cascade only re-orders the cosine top-depth
    shallow = index.search(query_videos, k=5, rerank=5, query_frames=query_frames)
    cosine = index.search(query_videos, k=5)
    for s, c in zip(shallow, cosine):
        assert set(s.ids) == set(c.ids)


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_load_and_resume_after_an_interrupted_add(tmp_path, backend):
    ids, videos, frames = random_collection(50, seed=5)
    index = VideoIndex(tmp_path / "idx", DIM, metadata={"model": "none"}, **backend_kwargs(backend))
    index.add(ids[:30], videos[:30], frames[:30])
    index.save()
    index.add(ids[30:40], videos[30:40], frames[30:40])  # never saved: a crash here loses only this
    resumed = VideoIndex.load(tmp_path / "idx")
    assert len(resumed) == 30 and resumed.config["metadata"] == {"model": "none"}
    assert resumed.index.ntotal == 30  # Milvus: the 10 rows inserted after the last save are deleted
    np.testing.assert_array_equal(resumed.frame_embeddings(ids[29]), frames[29].astype(np.float16))
    resumed.add(ids[30:], videos[30:], frames[30:])
    resumed.save()
    reloaded = VideoIndex.load(tmp_path / "idx")
    oneshot = VideoIndex(tmp_path / "oneshot", DIM)
    oneshot.add(ids, videos, frames)
    query_frames = frames[:3]
    for a, b in zip(
        reloaded.search(videos[:3], 5, rerank=20, query_frames=query_frames),
        oneshot.search(videos[:3], 5, rerank=20, query_frames=query_frames),
    ):
        assert a.ids == b.ids
        np.testing.assert_allclose(a.scores, b.scores)
    for i in (0, 33, 49):
        np.testing.assert_array_equal(reloaded.frame_embeddings(ids[i]), frames[i].astype(np.float16))
    with pytest.raises(ValueError, match="already in the index"):
        reloaded.add(ids[:1], videos[:1], frames[:1])
    with pytest.raises(ValueError, match="shape"):
        reloaded.add(["new"], videos[:1], [np.zeros((3, DIM + 1))])
    with pytest.raises(FileNotFoundError, match="not a vidtempo index"):
        VideoIndex.load(tmp_path / "nothing")


@pytest.mark.parametrize("backend", BACKENDS)
def test_index_and_search_commands(tmp_path, capsys, backend):
    ids, _, frames = random_collection(40, seed=6)
    features = write_descriptors(tmp_path / "features", dict(zip(ids, frames)), shard_size=7)
    flags = []
    if backend_kwargs(backend):  # Milvus Lite in a file of its own, outside the index folder
        flags = ["--backend", "milvus", "--milvus-uri", str(tmp_path / "lite.db")]
    common = ["--features", str(features), "--index", str(tmp_path / "idx"), "--no-progress"]
    assert index_main([*common, "--chunk-videos", "16", *flags]) == 0
    assert index_main(common) == 0  # resumes with the folder's backend
    index = VideoIndex.load(tmp_path / "idx")
    assert sorted(index.ids) == ids  # the second run resumed and added nothing twice
    assert index.config["backend"] == backend and index.index.ntotal == len(ids)
    queries = write_descriptors(tmp_path / "queries", {"probe": frames[7], "other": frames[8]})
    out = tmp_path / "results.json"
    assert (
        search_main(
            [
                "--index",
                str(tmp_path / "idx"),
                "--features",
                str(queries),
                "--k",
                "3",
                "--rerank",
                "40",
                "--output",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    payload = json.loads(out.read_text())
    assert payload["results"]["probe"][0]["id"] == ids[7]
    assert payload["results"]["probe"][0]["score"] == pytest.approx(1.0, abs=1e-3)  # chamfer with itself
    assert payload["results"]["other"][0]["id"] == ids[8]
    assert "probe:" in capsys.readouterr().out


def test_index_command_skips_malformed_videos(tmp_path):
    ids, _, frames = random_collection(12, seed=8)
    frames[3] = np.full_like(frames[3], np.inf)
    features = write_descriptors(tmp_path / "features", dict(zip(ids, frames)), shard_size=5)
    assert index_main(["--features", str(features), "--index", str(tmp_path / "idx"), "--no-progress"]) == 0
    index = VideoIndex.load(tmp_path / "idx")
    assert sorted(index.ids) == sorted(set(ids) - {ids[3]})
    np.testing.assert_array_equal(index.frame_embeddings(ids[4]), frames[4].astype(np.float16))


def _tiny_tca(path, seed):
    from vidtempo.modeling import TCAConfig, TCAModel

    torch.manual_seed(seed)
    config = TCAConfig(input_size=DIM, hidden_size=DIM, num_attention_heads=2, intermediate_size=32)
    TCAModel(config).eval().save_pretrained(path)
    return path


def test_index_refuses_another_model_and_search_works_from_any_directory(tmp_path, capsys, monkeypatch):
    import shutil

    ids, _, frames = random_collection(12, seed=9)
    write_descriptors(tmp_path / "features", dict(zip(ids, frames)))
    _tiny_tca(tmp_path / "tca_a", seed=0)
    _tiny_tca(tmp_path / "tca_b", seed=1)
    monkeypatch.chdir(tmp_path)  # the model is given as a relative path, as a user types it
    common = ["--features", "features", "--index", "idx", "--no-progress"]
    assert index_main([*common, "--model", "tca_a"]) == 0
    meta = json.loads((tmp_path / "idx" / "config.json").read_text())["metadata"]
    assert meta["model"] == str((tmp_path / "tca_a").resolve()) and len(meta["model_sha256"]) == 64
    # another model into the same index: refused, both named (it scored an exact copy 0.639 before)
    assert index_main([*common, "--model", "tca_b"]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("error: ") and "tca_a" in err and "tca_b" in err and "cannot be mixed" in err
    assert index_main([*common, "--model", "none"]) == 1  # the baseline is another space too
    shutil.copytree(tmp_path / "tca_a", tmp_path / "copy_of_a")  # the same weights elsewhere are fine
    assert index_main([*common, "--model", "copy_of_a"]) == 0
    # search from another directory finds the model the index recorded
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "results.json"
    search = ["--index", str(tmp_path / "idx"), "--features", str(tmp_path / "features"), "--queries", ids[2]]
    assert search_main([*search, "--k", "3", "--output", str(out), "--no-progress"]) == 0
    first = json.loads(out.read_text())["results"][ids[2]]
    assert first[0]["id"] == ids[2] and len(first) == 3  # the query itself, first
    assert search_main([*search, "--k", "3", "--exclude-self", "--output", str(out), "--no-progress"]) == 0
    without = json.loads(out.read_text())["results"][ids[2]]
    assert [r["id"] for r in without] == [r["id"] for r in first[1:]] + [without[-1]["id"]]
    assert ids[2] not in {r["id"] for r in without} and len(without) == 3


def test_a_hub_name_offline_fails_at_once_with_the_fix(tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    ids, _, frames = random_collection(4, seed=10)
    features = write_descriptors(tmp_path / "features", dict(zip(ids, frames)))
    argv = ["--features", str(features), "--index", str(tmp_path / "idx"), "--no-progress"]
    assert index_main([*argv, "--model", "someone/tca-fivr"]) == 1
    err = capsys.readouterr().err
    assert "'someone/tca-fivr' is not a local folder" in err and "pass a local folder" in err
    assert index_main([*argv, "--model", str(tmp_path / "missing" / "tca")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_search_command_lives_in_its_own_module_and_refuses_absent_queries(tmp_path, capsys):
    from vidtempo.cli import index as index_cli
    from vidtempo.cli import search as search_cli
    from vidtempo.search.index import INDEX_TYPES

    assert index_cli.INDEX_TYPES == INDEX_TYPES  # spelled out in the CLI so that --help stays light
    ids, _, frames = random_collection(6, seed=11)
    features = write_descriptors(tmp_path / "features", dict(zip(ids, frames)))
    assert index_main(["--features", str(features), "--index", str(tmp_path / "idx"), "--no-progress"]) == 0
    argv = ["--index", str(tmp_path / "idx"), "--features", str(features), "--no-progress"]
    assert search_cli.main([*argv, "--queries", "nobody"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: query videos (") and "nobody" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:  # checked by the parser, before any work
        search_cli.main([*argv, "--k", "0"])
    assert exit_info.value.code == 2
    assert "argument --k: expected a positive number" in capsys.readouterr().err


def test_milvus_bad_uri_unreachable_server_and_mismatches_are_clear_errors(tmp_path, capsys):
    pytest.importorskip("pymilvus")
    from vidtempo.search.milvus_backend import MilvusUnavailable

    with pytest.raises(MilvusUnavailable, match=r"milvus_uri 'ftp://x': cannot connect .*needs start with"):
        VideoIndex(tmp_path / "a", DIM, backend="milvus", milvus_uri="ftp://x")
    with pytest.raises(MilvusUnavailable, match=r"'http://127.0.0.1:1': cannot connect .*server unavailable"):
        VideoIndex(tmp_path / "b", DIM, backend="milvus", milvus_uri="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="supports index_type"):
        VideoIndex(tmp_path / "c", DIM, backend="milvus", index_type="ivfpq", pq_m=4)
    with pytest.raises(ValueError, match="backend must be one of"):
        VideoIndex(tmp_path / "d", DIM, backend="qdrant")
    uri = str(tmp_path / "shared.db")
    first = VideoIndex(tmp_path / "e", DIM, backend="milvus", milvus_uri=uri, milvus_collection="videos")
    assert first.milvus_uri == uri
    with pytest.raises(ValueError, match="'videos' already exists"):  # a second index never takes it over
        VideoIndex(tmp_path / "f", DIM, backend="milvus", milvus_uri=uri, milvus_collection="videos")
    ids, _, frames = random_collection(6, seed=12)
    features = write_descriptors(tmp_path / "features", dict(zip(ids, frames)))
    argv = ["--features", str(features), "--index", str(tmp_path / "idx"), "--no-progress"]
    assert index_main([*argv, "--backend", "milvus", "--milvus-uri", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: milvus_uri 'http://127.0.0.1:1': cannot connect")
    assert index_main(argv) == 0  # a FAISS index ...
    assert index_main([*argv, "--backend", "milvus"]) == 1  # ... is not extended with Milvus
    assert "uses backend 'faiss', not 'milvus'" in capsys.readouterr().err
    assert index_main([*argv, "--milvus-uri", uri]) == 2  # a usage error
    assert "--milvus-uri / --milvus-collection need --backend milvus" in capsys.readouterr().err


def test_int8_frame_store_halves_the_disk_and_the_cascade_ranks_by_the_decoded_frames(tmp_path):
    from vidtempo.processing.descriptor_store import decode_int8, encode_int8

    ids, videos, frames = random_collection(80, seed=13)
    index = VideoIndex(tmp_path / "idx", DIM, frame_codec="int8")
    index.add(ids[:60], videos[:60], frames[:60])
    index.save()
    index.add(ids[60:], videos[60:], frames[60:])  # not saved: both files are truncated on load
    index = VideoIndex.load(tmp_path / "idx")
    assert len(index) == 60 and index.config["frame_codec"] == "int8"
    index.add(ids[60:], videos[60:], frames[60:])
    index.save()
    index = VideoIndex.load(tmp_path / "idx")
    total = sum(len(f) for f in frames)
    assert (tmp_path / "idx" / "frames.i8").stat().st_size == total * DIM  # 1 byte a value (+ 4 a frame)
    assert (tmp_path / "idx" / "frames.scales").stat().st_size == total * 4
    decoded = [decode_int8(*encode_int8(f)) for f in frames]  # the reference: the codec's own formula
    for i in (0, 61, 79):
        np.testing.assert_allclose(index.frame_embeddings(ids[i]), decoded[i], rtol=0, atol=0)
        assert (
            np.abs(index.frame_embeddings(ids[i]) - frames[i]).max() <= np.abs(frames[i]).max() / 254 + 1e-7
        )
    query_ids, query_videos, query_frames = random_collection(4, seed=14)
    full = frame_level_similarities(
        [torch.from_numpy(f) for f in query_frames], [torch.from_numpy(f) for f in decoded], "chamfer"
    ).numpy()
    for result, row in zip(
        index.search(query_videos, k=10, rerank=len(ids), query_frames=query_frames), full
    ):
        expected = np.argsort(-row, kind="stable")[:10]
        assert result.ids == [ids[i] for i in expected]
        np.testing.assert_allclose(result.scores, row[expected], atol=1e-6)
    with pytest.raises(ValueError, match="frame codec must be one of"):
        VideoIndex(tmp_path / "bad", DIM, frame_codec="int4")

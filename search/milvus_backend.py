"""Video-level vectors of a `VideoIndex` in Milvus (a server, a cluster, or embedded Milvus Lite).

`MilvusVectors` has the part of the FAISS index interface that `VideoIndex` uses (`ntotal`, `is_trained`,
`train`, `add`, `search` returning ``(scores, rows)`` padded with -1), so the cascade is unchanged: cosine
top-depth from Milvus, chamfer re-ranking from the index folder's frame store.

Rows are the collection's int64 primary key (`row`, the position in ``ids.json``); each row also carries its
video id (`video_id`) for people who query the collection directly. Vectors are L2-normalised by
`VideoIndex`, so the ``IP`` metric is cosine.

Frame-level search stays in the frame store: the installed Milvus Lite (3.2.2) has no array-of-struct /
embedding-list field, so Milvus's late-interaction (``MAX_SIM``) search cannot run on it (pymilvus 3.0.2 has
the client side, `EmbeddingList`, for Milvus >= 2.6 servers).

The URI is ``http(s)://host:port`` / ``tcp://`` / ``unix:`` for a server, or a local ``*.db`` path for Milvus
Lite; an access token, when the server needs one, is read from the ``MILVUS_TOKEN`` environment variable (never
written to the index folder).
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np

logger = logging.getLogger(__name__)

MAX_TOPK = 16_384  # Milvus's limit on the results of one search
INSERT_ROWS = 1024  # rows per insert call (4 MiB of float32 at d = 1024, far below the gRPC message limit)
MILVUS_INDEX_TYPES = {"flat": "FLAT", "ivf": "IVF_FLAT"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


class MilvusUnavailable(ConnectionError):
    """The Milvus URI is malformed, or no server answers there."""


def connect(uri: str, timeout: float = 10.0):
    """A `pymilvus.MilvusClient` for `uri`, or `MilvusUnavailable` naming the URI and what was expected."""
    try:
        from pymilvus import MilvusClient
    except ImportError as error:  # the `milvus` extra is not installed
        raise ImportError("backend='milvus' needs pymilvus: pip install 'vidtempo[milvus]'") from error
    if not isinstance(uri, str) or not uri:
        raise MilvusUnavailable(f"milvus_uri must be a non-empty string, got {uri!r}")
    try:
        return MilvusClient(uri=uri, token=os.environ.get("MILVUS_TOKEN", ""), timeout=timeout)
    except Exception as error:  # pymilvus raises its own exception types for bad URIs and dead servers
        message = getattr(error, "message", None) or str(error)
        raise MilvusUnavailable(
            f"milvus_uri {uri!r}: cannot connect ({message}); expected a reachable Milvus server "
            "(http://host:19530) or a local Milvus Lite file path ending in .db"
        ) from error


class MilvusVectors:
    """One Milvus collection of video vectors, searched by inner product (cosine on normalised vectors).

    Args:
        uri: Milvus URI (see the module docstring).
        collection: collection name (letters, digits, underscores).
        dim: vector size.
        index_type: ``flat`` (exact) or ``ivf`` (IVF_FLAT with `nlist` lists, `nprobe` probed).
        create: make the collection (refused if it already exists); otherwise open an existing one.
    """

    def __init__(
        self,
        uri: str,
        collection: str,
        dim: int,
        index_type: str = "flat",
        nlist: int = 1024,
        nprobe: int = 32,
        create: bool = True,
    ):
        if index_type not in MILVUS_INDEX_TYPES:
            raise ValueError(
                f"backend='milvus' supports index_type {sorted(MILVUS_INDEX_TYPES)}, got {index_type!r}"
            )
        if not _NAME.match(collection):
            raise ValueError(
                f"milvus collection name {collection!r}: expected letters, digits and underscores, "
                "not starting with a digit"
            )
        self.uri, self.collection, self.dim = uri, collection, int(dim)
        self.index_type, self.nlist, self.nprobe = index_type, int(nlist), int(nprobe)
        self.client = connect(uri)
        exists = self.client.has_collection(collection)
        if create and exists:
            raise ValueError(
                f"milvus collection {collection!r} already exists at {uri}: choose another collection "
                "name, or drop it first"
            )
        if not create and not exists:
            raise FileNotFoundError(f"milvus collection {collection!r} not found at {uri}")
        if create:
            self._create()
        else:
            self._check_schema()
        self.client.load_collection(collection)
        self.ntotal = self.count()

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("video_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=self.dim)
        params = self.client.prepare_index_params()
        extra = {"nlist": self.nlist} if self.index_type == "ivf" else {}
        params.add_index(
            "vec", index_type=MILVUS_INDEX_TYPES[self.index_type], metric_type="IP", params=extra
        )
        self.client.create_collection(
            self.collection, schema=schema, index_params=params, consistency_level="Strong"
        )

    def _check_schema(self) -> None:
        fields = {f["name"]: f for f in self.client.describe_collection(self.collection)["fields"]}
        found = (fields.get("vec") or {}).get("params", {}).get("dim")
        if "row" not in fields or found is None or int(found) != self.dim:
            raise ValueError(
                f"milvus collection {self.collection!r} at {self.uri}: expected fields row, video_id and a "
                f"{self.dim}-d vec, found {sorted(fields)} (vec dim {found})"
            )

    # -- the FAISS-like interface used by VideoIndex ------------------------------------------------

    is_trained = True  # Milvus trains its IVF lists itself when it builds the index

    def train(self, vectors: np.ndarray) -> None:
        """Nothing to do: Milvus builds (and trains) its index on the server."""

    def count(self) -> int:
        """Rows in the collection, as the server counts them."""
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def add(self, vectors: np.ndarray, video_ids: list[str]) -> None:
        """Insert normalised `vectors` [n, dim] as rows ntotal, ntotal + 1, ..."""
        for start in range(0, len(vectors), INSERT_ROWS):
            block = vectors[start : start + INSERT_ROWS]
            rows = [
                {"row": self.ntotal + start + i, "video_id": video_ids[start + i], "vec": v}
                for i, v in enumerate(block)
            ]
            self.client.insert(self.collection, rows)
        self.ntotal += len(vectors)

    def truncate(self, rows: int) -> None:
        """Delete every row at position >= `rows` (vectors inserted after the folder's last commit)."""
        if self.ntotal > rows:
            self.client.delete(self.collection, filter=f"row >= {int(rows)}")
            self.ntotal = self.count()

    def flush(self) -> None:
        """Make the inserted rows durable on the server."""
        self.client.flush(self.collection)

    def search(self, queries: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) [Q, depth] by inner product, best first, ties by row; -1 pads missing results."""
        if depth > MAX_TOPK:
            raise ValueError(f"backend='milvus' returns at most {MAX_TOPK} results per query, asked {depth}")
        params = {"metric_type": "IP", "params": {"nprobe": self.nprobe} if self.index_type == "ivf" else {}}
        scores = np.full((len(queries), depth), -np.inf, dtype=np.float32)
        rows = np.full((len(queries), depth), -1, dtype=np.int64)
        for start in range(0, len(queries), 64):
            block = [q for q in queries[start : start + 64]]
            hits = self.client.search(
                self.collection, data=block, limit=depth, anns_field="vec", search_params=params
            )
            for i, found in enumerate(hits):
                r = np.array([h["row"] for h in found], dtype=np.int64)
                s = np.array([h["distance"] for h in found], dtype=np.float32)
                order = np.lexsort((r, -s))  # by score, then by row (FAISS and the BLAS path agree)
                rows[start + i, : len(r)], scores[start + i, : len(r)] = r[order], s[order]
        return scores, rows

    def close(self) -> None:
        """Close the client connection."""
        self.client.close()


__all__ = ["MAX_TOPK", "MILVUS_INDEX_TYPES", "MilvusUnavailable", "MilvusVectors", "connect"]

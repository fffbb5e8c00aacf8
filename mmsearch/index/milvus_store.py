"""The Milvus vector store, ``--vector-store milvus://HOST:PORT``: an index's nearest-neighbour search runs in a Milvus
server (standalone, or a cluster behind one address) instead of in this process's Faiss.

What stays in the index directory is what it always held (the exact vectors, the items table, BM25, the manifest):
re-ranking, similar items and near-duplicates read them there. Milvus holds each build's vectors under their slots
in a collection of its own, named in the directory's ``milvus.json``, with the index type the size rules chose
(kinds/: flat -> FLAT, hnsw -> HNSW, ivfpq -> IVF_PQ, re-ranked exactly here from the vectors), and beside them the
catalog columns filters read (milvus_columns.py): a filter on those becomes a Milvus expression, whatever its size.

A swap is atomic because a build never touches the collection a server searches: a full build fills a new collection,
points the alias ``mmsearch_<index>`` at it once it is loaded, and the index directory's own swap makes servers read
it; the collection before the previous one is dropped then (one generation is kept for servers still swapping). An
update upserts its new slots and the rows whose columns changed, and deletes its gone ones, in the served collection;
a server still on the previous build ignores slots it does not know.

A server that does not answer is ``VectorStoreUnavailable`` (503 with Retry-After, /readyz not ready), one that
cannot be reached when an index is built or loaded ``VectorStoreError`` with the address.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmsearch.index.filters import Clause
from mmsearch.index.kinds._base import IndexKind
from mmsearch.index.milvus_columns import FIELD_BYTES, Layout, layout_of

SCHEME = "milvus://"
FILE = "milvus.json"
BATCH = 2_000  # rows per insert: well under Milvus's 64 MB gRPC message at 1,792 dimensions (~14 MB)
TIMEOUT_S = 2.0  # a search or a check that takes longer counts the server as down
TOPK_MAX = 16_384  # the most results Milvus gives one search
OVERSAMPLE_SHARE = 0.02  # a filter keeping at least this share of the catalog is applied after a deeper search
INDEX_TYPES = {"flat": "FLAT", "hnsw": "HNSW", "ivfpq": "IVF_PQ"}


class VectorStoreError(RuntimeError):
    """A vector store setting that cannot be used: a malformed address, a server that cannot be reached."""


class VectorStoreUnavailable(RuntimeError):
    """The vector store did not answer a search: the service stays up and says so (503, /readyz)."""


def is_milvus(store: str | None) -> bool:
    return bool(store) and str(store).startswith(SCHEME)


def address(store: str) -> str:
    """'milvus://127.0.0.1:19530' -> 'http://127.0.0.1:19530' (VectorStoreError when it is not of that form)."""
    found = re.fullmatch(r"milvus://([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})/?", store or "")
    if not found or not 0 < int(found.group(2)) < 65536:
        raise VectorStoreError(
            f"--vector-store {store!r}: use faiss, or milvus://HOST:PORT (e.g. milvus://127.0.0.1:19530)"
        )
    return f"http://{found.group(1)}:{found.group(2)}"


def connect(store: str, timeout: float = TIMEOUT_S):
    from pymilvus import MilvusClient

    try:
        return MilvusClient(uri=address(store), timeout=timeout)
    except VectorStoreError:
        raise
    except Exception as exc:  # pymilvus raises its own and gRPC's errors
        raise VectorStoreError(f"the Milvus server at {store} cannot be reached: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc).splitlines()[0][:300]


def alias_for(index_dir: Path) -> str:
    """The alias of an index directory's collections: one per directory, stable across builds."""
    return "mmsearch_" + hashlib.sha256(str(Path(index_dir).resolve()).encode()).hexdigest()[:16]


@dataclass
class MilvusEngine:
    client: object
    store: str
    collection: str
    alias: str
    previous: str | None = None  # the collection the alias named before this build (kept one generation)
    layout: Layout = Layout()  # the catalog columns the collection holds


def fetch_plan(allowed: np.ndarray | None, live: int, depth: int) -> tuple[str, int]:
    """How a search with a filter's allowed slots runs in Milvus: (an expression on slots, how many to fetch). A
    filter that keeps a fair share of the catalog is applied to an unfiltered search fetched deeper (measured on 200k
    slots: an expression of 100k slots took 490 ms a search, fetching deeper about 4 ms); a narrow one becomes
    ``slot in [...]``. Short answers are completed exactly by the caller (vectors.py)."""
    if allowed is None:
        return "", depth
    share = len(allowed) / max(live, 1)
    if share >= OVERSAMPLE_SHARE:
        return "", min(TOPK_MAX, int(np.ceil(2 * depth / share)))
    return f"slot in [{','.join(map(str, np.asarray(allowed, np.int64).tolist()))}]", depth


class MilvusKind(IndexKind):
    """``inner``'s kind (its rule, parameters and size) with its engine in Milvus."""

    removes = True
    mapped = False
    shared = True
    file = FILE

    def __init__(self, store: str, inner: IndexKind, alias: str = "", timeout: float = TIMEOUT_S):
        self.store, self.inner, self.alias, self.timeout = store, inner, alias, timeout
        self.name, self.order, self.when = inner.name, inner.order, inner.when

    def params(self, n: int, dim: int) -> dict:
        return self.inner.params(n, dim)

    def bytes(self, n: int, dim: int) -> int:
        return self.inner.bytes(n, dim)

    def describe(self, n: int, dim: int, budget: int) -> str:
        return self.inner.describe(n, dim, budget)

    def make(self, dim: int, params: dict, train=None, table: pd.DataFrame | None = None) -> MilvusEngine:
        from pymilvus import DataType

        client = connect(self.store, self.timeout)
        name = f"{self.alias}_{time.strftime('%Y%m%d%H%M%S')}_{uuid.uuid4().hex[:6]}"
        layout = Layout() if table is None else layout_of(table)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("slot", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        for field, kind in layout.fields():
            if kind == "text":
                schema.add_field(field, DataType.VARCHAR, max_length=FIELD_BYTES)
            else:
                schema.add_field(field, DataType.DOUBLE if kind == "number" else DataType.BOOL)
        index = client.prepare_index_params()
        index.add_index(
            field_name="vector", index_type=INDEX_TYPES[self.name], metric_type="IP", params=self._index_params(params)
        )
        self._call(client.create_collection, name, schema=schema, index_params=index)
        return MilvusEngine(client, self.store, name, self.alias, self._aliased(client), layout)

    def _index_params(self, params: dict) -> dict:
        if self.name == "hnsw":
            return {"M": params["M"], "efConstruction": params["efConstruction"]}
        if self.name == "ivfpq":  # Milvus's IVF_PQ takes nbits 8 only; the exact re-ranking here makes up the rest
            return {"nlist": params["nlist"], "m": params["pq_m"], "nbits": 8}
        return {}

    def _aliased(self, client) -> str | None:
        """The collection the alias names now; None before a first build. (Asking Milvus to describe an alias that
        does not exist yet makes pymilvus log a traceback: the collections of this index are asked instead.)"""
        for name in self._call(client.list_collections):
            if name.startswith(self.alias + "_") and self.alias in self._call(client.list_aliases, name)["aliases"]:
                return name
        return None

    def add(self, engine: MilvusEngine, vectors: np.ndarray, slots: np.ndarray, table=None) -> None:
        """Upserts ``vectors`` under ``slots`` with their rows of ``table`` (the held columns' values)."""
        for start in range(0, len(vectors), BATCH):
            part = slice(start, start + BATCH)
            values, engine.layout = engine.layout.rows(
                table.iloc[part] if table is not None else pd.DataFrame(index=range(len(vectors[part])))
            )
            rows = [
                {"slot": int(s), "vector": v.tolist()}
                for s, v in zip(slots[part], np.asarray(vectors[part], np.float32))
            ]
            for name, column in values.items():
                for row, value in zip(rows, column):
                    row[name] = value
            self._call(engine.client.upsert, engine.collection, rows)

    def relabel(self, engine: MilvusEngine, vectors, before, after, reused: np.ndarray) -> None:
        if not engine.layout.held:
            return
        kept = np.flatnonzero(reused >= 0)
        slots = reused[kept].astype(np.int64)
        row_of_slot = pd.Series(np.arange(len(before)), index=before["slot"].to_numpy())
        old, _ = engine.layout.rows(before.iloc[row_of_slot.loc[slots].to_numpy()].reset_index(drop=True))
        new, _ = engine.layout.rows(after.iloc[kept].reset_index(drop=True))
        changed = np.zeros(len(slots), bool)
        for name in new:
            changed |= np.asarray(old[name], object) != np.asarray(new[name], object)
        at = np.flatnonzero(changed)
        if len(at):
            self.add(engine, np.asarray(vectors[slots[at]], np.float32), slots[at], after.iloc[kept[at]])

    def remove(self, engine: MilvusEngine, slots: np.ndarray) -> None:
        for start in range(0, len(slots), BATCH):
            self._call(engine.client.delete, engine.collection, ids=[int(s) for s in slots[start : start + BATCH]])

    def count(self, engine: MilvusEngine) -> int:
        rows = self._call(
            engine.client.query, engine.collection, filter="", output_fields=["count(*)"], consistency_level="Strong"
        )
        return int(rows[0]["count(*)"])

    def save(self, engine: MilvusEngine, path: Path) -> None:
        """Makes the collection searchable, points the alias at it, drops the generation before the previous one,
        and writes where it is (``milvus.json``) into the index directory being written."""
        client = engine.client
        self._call(client.flush, engine.collection)
        self._call(client.load_collection, engine.collection)
        if engine.previous != engine.collection:
            if engine.previous is None:
                self._call(client.create_alias, engine.collection, engine.alias)
            else:
                self._call(client.alter_alias, engine.collection, engine.alias)
            for old in self._call(client.list_collections):
                if old.startswith(engine.alias + "_") and old not in (engine.collection, engine.previous):
                    self._call(client.drop_collection, old)
        saved = {"collection": engine.collection, "alias": engine.alias, "columns": engine.layout.to_json()}
        Path(path).write_text(json.dumps(saved, indent=2))

    def load(self, path: Path, writable: bool) -> MilvusEngine:
        saved = json.loads(Path(path).read_text())
        client = connect(self.store, self.timeout)
        try:
            present = client.has_collection(saved["collection"], timeout=self.timeout)
        except Exception as exc:
            raise VectorStoreError(f"the Milvus server at {self.store} cannot be reached: {_reason(exc)}") from exc
        if not present:
            raise VectorStoreError(
                f"the Milvus server at {self.store} has no collection {saved['collection']}: the index was built "
                "into another server, or its collection was dropped; rebuild it with index_build.py --full"
            )
        self._call(client.load_collection, saved["collection"])
        return MilvusEngine(
            client,
            self.store,
            saved["collection"],
            saved["alias"],
            saved["collection"],
            Layout.from_json(saved.get("columns")),  # none in a build from before columns were held
        )

    def expresses(self, engine: MilvusEngine, clauses: list[Clause]) -> bool:
        return bool(clauses) and engine.layout.expression(clauses) is not None

    def search(
        self, engine: MilvusEngine, vectors, queries, k, allowed, excluded, params: dict, available: int, clauses=()
    ):
        depth = max(k, params.get("rerank_depth", 0)) if self.name == "ivfpq" else k
        where = engine.layout.expression(list(clauses)) if clauses else None
        if where:  # the filter inside Milvus, over the columns it holds
            fetch, allowed = min(depth, TOPK_MAX), None
        else:
            where, fetch = fetch_plan(allowed, len(vectors), min(depth, TOPK_MAX))
        if self.name == "hnsw":
            search_params = {"metric_type": "IP", "params": {"ef": max(params.get("efSearch", 64), 2 * fetch)}}
        elif self.name == "ivfpq":
            search_params = {"metric_type": "IP", "params": {"nprobe": params.get("nprobe", 16)}}
        else:
            search_params = {"metric_type": "IP"}
        try:
            found = engine.client.search(
                engine.collection,
                data=np.asarray(queries, np.float32).tolist(),
                limit=fetch,
                filter=where,
                search_params=search_params,
                output_fields=[],
                # Bounded: "Strong" waited for the next time tick, 200 ms a search here (p50 over 40, against a few
                # ms); a search may miss an update's last second, and a server on the previous build ignores its
                # new slots.
                consistency_level="Bounded",
                timeout=self.timeout,
            )
        except Exception as exc:  # pymilvus raises its own and gRPC's errors
            raise VectorStoreUnavailable(
                f"The vector store (Milvus at {self.store}) is out of reach right now. Retry in a moment."
            ) from exc
        allowed = None if allowed is None or where else np.sort(np.asarray(allowed, np.int64))
        scores = np.full((len(queries), k), -np.inf, np.float32)
        slots = np.full((len(queries), k), -1, np.int64)
        for q, hits in enumerate(found):
            got = np.array([h["id"] for h in hits], np.int64)
            got = got[got < len(vectors)]  # a slot an update added after this build: not this build's
            if allowed is not None:  # fetched deeper, filtered here
                at = np.minimum(np.searchsorted(allowed, got), len(allowed) - 1)
                got = got[allowed[at] == got]
            if not len(got):
                continue
            exact = np.asarray(vectors[got], np.float32) @ queries[q]  # IVF_PQ's codes, re-ranked exactly
            order = np.argsort(-exact, kind="stable")[:k]
            scores[q, : len(order)], slots[q, : len(order)] = exact[order], got[order]
        return scores, slots

    def exclusion(self, present: np.ndarray, slots: int):
        """The slots of removed items: an update deletes them from the collection, so none is needed."""
        return None

    def reachable(self, engine: MilvusEngine) -> bool:
        try:
            return bool(engine.client.has_collection(engine.collection, timeout=self.timeout))
        except Exception:
            return False

    def _call(self, method, *args, **kwargs):
        """A build's or a load's call: a longer deadline than a search's (a flush or a load takes seconds)."""
        try:
            return method(*args, timeout=self.timeout * 30, **kwargs)
        except Exception as exc:
            raise VectorStoreError(f"Milvus at {self.store} refused {method.__name__}: {_reason(exc)}") from exc

"""The index directory and searching it, whatever the index's kind (kinds/: this module asks nothing of a kind
but its interface).

An index directory holds ``manifest.json`` (written last: its presence marks a complete directory), ``faiss.index``
(the engine of its kind, which the kind saves and loads), ``vectors.npy`` (every slot's exact vector, memory-mapped:
re-ranking, filtered exact search, similar items, updates), ``items.parquet`` (one row per item in the index: id,
slot, image_hash, listing revision and every catalog column, so filters and keyword search read one columnar file),
``pictures.parquet`` (products' pictures after their first, when a catalog names several: each a slot of its own whose
vector answers for its product), ``keyword/``, ``skipped.csv`` and ``near_duplicates.csv``. Vectors are
L2-normalised: inner product is cosine similarity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmsearch import atomic
from mmsearch.index import kinds, milvus_store
from mmsearch.index.kinds import IndexKind
from mmsearch.ingest.catalog import PICTURES

FAISS_FILE, VECTORS_FILE, ITEMS_FILE, MANIFEST_FILE = "faiss.index", "vectors.npy", "items.parquet", "manifest.json"
PICTURES_FILE = "pictures.parquet"  # products' pictures after their first: item_id, position, image, image_hash, slot
REPORT_FILE, DUPLICATES_FILE = "skipped.csv", "near_duplicates.csv"
LAYOUT = 2  # 1: ids.json and one Feast listing per item id (catalogs overwrote each other)
FAISS = "faiss"  # --vector-store's default: the engine in this process, saved in the index directory


def engine_kind(kind: str, store: str = FAISS, alias: str = "") -> IndexKind:
    """The kind ``kind`` with its engine where ``store`` says: Faiss here, or a Milvus server (milvus_store.py)."""
    if store in (FAISS, "", None):
        return kinds.kind(kind)
    milvus_store.address(store)  # anything else but milvus://HOST:PORT is refused here, naming the forms it takes
    return milvus_store.MilvusKind(store, kinds.kind(kind), alias)


def store_of(manifest: dict) -> str:
    """The vector store an index was built into (faiss for every index built before there was a choice)."""
    return manifest.get("vector_store") or FAISS


def same_store(built: str, asked: str) -> bool:
    """Whether ``asked`` can serve an index built into ``built``: the same engine (a Milvus server may be named by
    another address from another machine)."""
    return milvus_store.is_milvus(built) == milvus_store.is_milvus(asked)


class IndexLoadError(RuntimeError):
    """An index directory that is missing, incomplete, of an older layout, or made for another model."""


@dataclass
class VectorIndex:
    engine: object  # the kind's own index: a Faiss index for today's kinds
    vectors: np.ndarray  # [slots, dim]; rows of removed items stay until the next compaction
    items: pd.DataFrame  # the items in the index, in row order, with their ``slot``
    manifest: dict
    path: Path | None = None
    how: IndexKind | None = None  # the kind with its engine (engine_kind); by default the manifest's kind in Faiss
    # A product's pictures after its first (PICTURES_FILE's rows), each a slot of its own that answers for the product.
    pictures: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        self.ids = self.items["item_id"].astype(str).tolist()
        self._row = {item_id: n for n, item_id in enumerate(self.ids)}
        self.slots = self.items["slot"].to_numpy(dtype=np.int64)
        # Looked up for every result: one array, not a column of a million-row frame per query.
        self.revisions = self.items["revision"].to_numpy() if "revision" in self.items else None
        self.row_of_slot = np.full(len(self.vectors), -1, dtype=np.int64)
        self.row_of_slot[self.slots] = np.arange(len(self.slots))
        self._more_pictures()
        self.kind = self.manifest.get("index_kind", "flat")
        self.how = self.how or kinds.kind(self.kind)
        self._resident = self.how.resident(self.engine, len(self.vectors))  # a view: keeps no copy
        self.params = self.manifest.get("index_params", {})
        masked = len(self.vectors) - self.live
        # A kind that cannot remove keeps removed items' vectors: what excludes them is made once, here.
        self._excluded = self.how.exclusion(self.slots, len(self.vectors)) if masked and not self.how.removes else None

    def _more_pictures(self) -> None:
        """Each product's other pictures as slots of its row: a search that finds any of them finds the product."""
        self.fan, self.live, self._others = 1, len(self.slots), {}
        if self.pictures is None or self.pictures.empty:
            self.pictures = None
            return
        owners = np.array([self._row[i] for i in self.pictures["item_id"].astype(str)], dtype=np.int64)
        slots = self.pictures["slot"].to_numpy(dtype=np.int64)
        self.row_of_slot[slots] = owners
        for owner, slot, position in zip(owners, slots, self.pictures["position"].to_numpy()):
            self._others.setdefault(int(owner), []).append((int(position), int(slot)))
        self.fan = 1 + max(len(v) for v in self._others.values())  # the most slots one product holds
        self.live += len(slots)

    def picture_slots(self, item_id: str) -> list[tuple[int, int]]:
        """(position in the product's pictures, slot) of each of its pictures, the first (the listing's) first."""
        row = self._row[item_id]
        return [(0, int(self.slots[row])), *self._others.get(row, [])]

    def picture_paths(self, item_id: str) -> list[str]:
        """The paths of a product's pictures on the server, as its catalog lists them (the first is the listing's);
        positions match ``picture_slots``' and the ``?picture=N`` routes'."""
        row = self._row[item_id]
        cell = self.items[PICTURES].iat[row] if PICTURES in self.items.columns else ""
        return (
            json.loads(cell) if isinstance(cell, str) and cell.startswith("[") else [str(self.items["image"].iat[row])]
        )

    def _live_slots(self, rows: np.ndarray) -> np.ndarray:
        """The slots of these rows' pictures: each row's first, then the others of those that have more."""
        first = self.slots[rows]
        if not self._others:
            return first
        more = [s for r in rows.tolist() for _, s in self._others.get(r, ())]
        return np.concatenate([first, np.asarray(more, dtype=np.int64)]) if more else first

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    @property
    def model_id(self) -> str:
        return self.manifest["model_id"]

    @property
    def catalog_id(self) -> str:
        return self.manifest["catalog_id"]

    def held_by(self, store) -> bool:
        """Whether a feature store's online side still holds the rows this index reads: its build's mark, or for a
        build that left none a sample of its listings (StoreUnavailable when the store does not answer)."""
        return store.holds(self.catalog_id, self.manifest.get("online_mark"), self.ids, list(self.revisions))

    def row(self, item_id: str) -> int:
        return self._row[item_id]

    def vector(self, item_id: str) -> np.ndarray:
        return np.asarray(self.vectors[self.slots[self._row[item_id]]], dtype=np.float32)

    def search(
        self, queries: np.ndarray, k: int, rows: np.ndarray | None = None, clauses: list | None = None
    ) -> list[list[tuple[str, float]]]:
        """Top-k (item_id, cosine score) per query row; with ``rows``, among those index rows only, and k come back
        whenever k rows are allowed, whatever the kind (a selective filter is answered exactly). ``clauses``: the
        filter that chose exactly ``rows``, for an engine that applies filters itself (Milvus)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        allowed = None if rows is None else self._live_slots(np.asarray(rows, dtype=np.int64))
        wanted = max(0, min(int(k), len(self.ids) if rows is None else len(rows)))
        limit = self.live if allowed is None else len(allowed)
        if wanted == 0 or limit == 0:
            return [[] for _ in range(len(queries))]
        if self.fan == 1:
            scores, slots = self._slots(queries, wanted, allowed, clauses)
            return [
                [
                    (self.ids[self.row_of_slot[s]], float(v))
                    for s, v in zip(ss, vv)
                    if s >= 0 and self.row_of_slot[s] >= 0
                ]
                for ss, vv in zip(slots, scores)
            ]
        # A product answers with its closest picture: the first k products among the closest slots are the k best.
        # Twice k slots first, deeper while some product had several among them (k x fan at worst, which one product
        # with many pictures would otherwise impose on every query).
        fetch = min(2 * wanted, limit)
        while True:
            scores, slots = self._slots(queries, fetch, allowed, clauses)
            found = [self._products(ss, vv, wanted) for ss, vv in zip(slots, scores)]
            if fetch >= min(limit, wanted * self.fan) or all(len(f) == wanted for f in found):
                return found
            fetch = min(limit, fetch * 2)

    def _slots(self, queries, k, allowed, clauses) -> tuple[np.ndarray, np.ndarray]:
        """The k closest live slots (of ``allowed`` only, when given) to each query: scores and slots."""
        inside = allowed is not None and clauses and self.how.expresses(self.engine, clauses)
        if allowed is not None and not inside and (len(allowed) <= kinds.EXACT_FILTER_MAX or self.how.exact_filters):
            return kinds.exact_top(self.vectors if self._resident is None else self._resident, allowed, queries, k)
        return self._ann(queries, k, allowed, clauses if inside else ())

    def _products(self, slots: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Slots found, best first, as products: each at its closest picture's score, once."""
        out, seen = [], set()
        for s, v in zip(slots, scores):
            row = self.row_of_slot[s] if s >= 0 else -1
            if row >= 0 and row not in seen:
                seen.add(row)
                out.append((self.ids[row], float(v)))
                if len(out) == k:
                    break
        return out

    def _ann(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, clauses=()
    ) -> tuple[np.ndarray, np.ndarray]:
        available = self.live if allowed is None else len(allowed)
        scores, slots = self.how.search(
            self.engine, self.vectors, queries, k, allowed, self._excluded, self.params, available, clauses
        )
        short = (slots[:, :k] < 0).any(axis=1)
        if short.any():  # the graph or the probed lists ran out inside the filter: exact over the allowed rows
            pool = self._live_slots(np.arange(len(self.ids))) if allowed is None else allowed
            s2, i2 = kinds.exact_top(self.vectors, pool, queries[short], k)
            scores[short, :k], slots[short, :k] = s2, i2
        return scores[:, :k], slots[:, :k]

    def neighbours(self, slots: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Each picture's (slot's) m nearest live pictures (scores, their products' rows), itself included:
        near-duplicates without all pairs."""
        queries = np.asarray(self.vectors[slots], dtype=np.float32)
        scores, found = self._ann(queries, m, None)
        return scores, np.where(found >= 0, self.row_of_slot[np.maximum(found, 0)], -1)

    def near_duplicates(
        self, threshold: float, rows: np.ndarray | None = None, m: int = 10
    ) -> list[tuple[str, str, float]]:
        """Pairs of products with pictures at least ``threshold`` alike, among each picture's m nearest (all rows'
        pictures, or ``rows``' against all); a product's own pictures are no pair."""
        rows = np.arange(len(self.ids)) if rows is None else np.asarray(rows, dtype=np.int64)
        slots = self._live_slots(rows)
        pairs: dict[tuple[str, str], float] = {}  # a pair at its closest two pictures
        for start in range(0, len(slots), 4096):
            chunk = slots[start : start + 4096]
            scores, found = self.neighbours(chunk, min(m * self.fan, self.live))
            for r, ss, ff in zip(self.row_of_slot[chunk], scores, found):
                for s, f in zip(ss, ff):
                    if f >= 0 and f != r and s >= threshold:
                        pair = tuple(sorted((self.ids[r], self.ids[f])))
                        pairs[pair] = max(pairs.get(pair, -1.0), round(float(s), 4))
        return sorted((a, b, s) for (a, b), s in pairs.items())


def build(
    vectors: np.ndarray,
    items: pd.DataFrame,
    manifest: dict,
    kind: str = "flat",
    how: IndexKind | None = None,
    pictures: pd.DataFrame | None = None,
) -> VectorIndex:
    """A fresh index over ``vectors``: the rows of ``items`` in order (slots are the row numbers), then the rows of
    ``pictures`` (products' other pictures: item_id, position, image, image_hash). ``how``: the kind with its engine
    elsewhere (engine_kind), else Faiss here."""
    items = items.reset_index(drop=True)
    more = 0 if pictures is None else len(pictures)
    if len(vectors) != len(items) + more:
        raise ValueError(f"{len(vectors)} vectors for {len(items)} items and {more} more pictures")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    how = how or kinds.kind(kind)
    p = how.params(len(vectors), vectors.shape[1])
    slots = np.arange(len(vectors), dtype=np.int64)
    table = items  # each slot's product's columns (an engine that filters itself holds them per vector)
    if more:
        row = {item_id: n for n, item_id in enumerate(items["item_id"].astype(str))}
        table = pd.concat([items, items.iloc[[row[i] for i in pictures["item_id"].astype(str)]]], ignore_index=True)
        pictures = pictures.reset_index(drop=True).assign(slot=slots[len(items) :])
    index = how.make(vectors.shape[1], p, train=vectors, table=table)
    how.add(index, vectors, slots, table)
    return VectorIndex(
        index,
        vectors,
        items.assign(slot=slots[: len(items)]),
        _described(manifest, kind, p, vectors, len(items)) | {"vector_store": getattr(how, "store", FAISS)},
        how=how,
        pictures=pictures if more else None,
    )


def updated(
    prev: VectorIndex,
    items: pd.DataFrame,
    reused: np.ndarray,
    fresh: np.ndarray,
    manifest: dict,
    scratch: Path | None = None,
) -> VectorIndex:
    """``prev`` changed instead of rebuilt: ``items`` (new row order) whose rows with ``reused`` >= 0 keep that slot
    of ``prev`` and whose other rows take ``fresh`` vectors, in order, in new slots.

    ``prev``'s Faiss index is changed in place (load it privately, as a build does: the served one is another copy).
    With ``scratch``, the vectors file is written there chunk by chunk and mapped, never held whole in memory."""
    index = prev.engine
    prev._resident = None  # a view into storage that the adds below may move: prev must not search from it again
    keep = reused[reused >= 0]
    gone = np.setdiff1d(prev.slots, keep)
    if len(gone) and prev.how.removes:
        prev.how.remove(index, gone)
    new_slots = np.arange(len(prev.vectors), len(prev.vectors) + len(fresh), dtype=np.int64)
    fresh = np.ascontiguousarray(fresh, dtype=np.float32)
    if scratch is not None:
        vectors = stream_npy(scratch, [prev.vectors, fresh], prev.vectors.shape[1])
    else:
        vectors = np.concatenate([np.asarray(prev.vectors, dtype=np.float32), fresh])
    items = items.reset_index(drop=True)
    if len(fresh):
        prev.how.add(index, np.ascontiguousarray(fresh, dtype=np.float32), new_slots, items[reused < 0])
    prev.how.relabel(index, prev.vectors, prev.items, items, reused)
    slots = reused.astype(np.int64).copy()
    slots[reused < 0] = new_slots
    return VectorIndex(
        index,
        vectors,
        items.assign(slot=slots).reset_index(drop=True),
        _described(
            manifest | {"index_rule": prev.manifest.get("index_rule"), "vector_store": store_of(prev.manifest)},
            prev.kind,
            prev.params,
            vectors,
            len(items),
        ),
        how=prev.how,
    )


def scratch_vectors(out_dir: Path) -> Path:
    """Where a build of ``out_dir`` streams its vectors before the write moves them in (same filesystem)."""
    return Path(out_dir).parent / f".{Path(out_dir).name}.vectors.npy"


def stream_npy(path: Path, parts: list[np.ndarray], dim: int, chunk: int = 65_536) -> np.ndarray:
    """Writes the rows of ``parts`` one after another as a .npy file with plain writes (a memory map being written
    would count every page in the process's resident memory), then maps it read-only."""
    rows = sum(len(p) for p in parts)
    Path(path).parent.mkdir(parents=True, exist_ok=True)  # a first build's folder may not exist yet
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)})
        for part in parts:
            if _copy_mapped(part, fh):
                continue
            for start in range(0, len(part), chunk):
                fh.write(np.ascontiguousarray(part[start : start + chunk], dtype="<f4").tobytes())
    return np.load(path, mmap_mode="r")


def _copy_mapped(part: np.ndarray, out) -> bool:
    """Copies a whole memory-mapped .npy array file to file inside the kernel: reading it through the map would
    make every page of it resident in this process (2 GB for a million 512-d vectors)."""
    if not (
        isinstance(part, np.memmap)
        and part.filename
        and part.dtype == np.dtype("<f4")
        and part.flags.c_contiguous
        and part.base is not None
        and part.size * 4 == part.nbytes
    ):
        return False
    out.flush()
    with open(part.filename, "rb") as src:
        offset, left = part.offset, part.nbytes
        if os.fstat(src.fileno()).st_size != offset + left:  # a slice of the map keeps the whole file's offset
            return False
        while left:
            sent = os.copy_file_range(src.fileno(), out.fileno(), min(left, 1 << 30), offset)
            if sent <= 0:
                raise OSError(f"copying the vectors of {part.filename} stopped with {left:,} bytes to go")
            offset, left = offset + sent, left - sent
    return True


def compaction_due(slots: int, present: int) -> bool:
    """Rebuild rather than update once this share of slots would belong to removed or re-encoded items."""
    return slots > 0 and 1 - present / slots > kinds.COMPACT_AT


def _described(manifest: dict, kind: str, p: dict, vectors: np.ndarray, n: int) -> dict:
    return manifest | {
        "layout": LAYOUT,
        "metric": "inner_product",
        "index_kind": kind,
        "index_params": p,
        "dimension": int(vectors.shape[1]),
        "item_count": n,
        "slots": len(vectors),
    }


def write(index: VectorIndex, out_dir: Path, extra: Callable[[Path], None] | None = None) -> Path:
    """Writes the index directory atomically; ``extra`` may add files (reports, keyword index) before the swap."""
    with atomic.atomic_dir(Path(out_dir)) as tmp:
        index.how.save(index.engine, tmp / index.how.file)
        if isinstance(index.vectors, np.memmap) and Path(index.vectors.filename) == scratch_vectors(out_dir):
            os.replace(index.vectors.filename, tmp / VECTORS_FILE)  # a scratch file of this build: moved, not copied
        else:
            np.save(tmp / VECTORS_FILE, np.asarray(index.vectors, dtype=np.float32))
        index.items.to_parquet(tmp / ITEMS_FILE, index=False)
        if index.pictures is not None:
            index.pictures.to_parquet(tmp / PICTURES_FILE, index=False)
        if extra is not None:
            extra(tmp)
        index.manifest["faiss_total"] = index.how.count(index.engine)
        (tmp / MANIFEST_FILE).write_text(json.dumps(index.manifest, indent=2, default=str))
    index.path = Path(out_dir)
    return Path(out_dir)


def read_index_manifest(path: Path) -> dict | None:
    """The manifest of the index at ``path`` (None if there is none), after putting back a complete build if a
    killed swap left ``path`` missing."""
    recover(path)
    return _manifest(path)


def recover(path: Path) -> None:
    """An index directory is complete when its manifest reads (the manifest is written last)."""
    atomic.recover(Path(path), lambda candidate: _manifest(candidate) is not None)


def _manifest(path: Path) -> dict | None:
    try:
        return json.loads((Path(path) / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None


def load(
    path: Path, expect_model_id: str | None = None, writable: bool = False, store: str | None = None
) -> VectorIndex:
    """The index at ``path``; ``store``: the vector store this process was told to use (refused when the index was
    built into another kind of store; a Milvus index is searched at this address)."""
    path = Path(path)
    manifest = read_index_manifest(path)
    if manifest is None:
        raise IndexLoadError(f"no index at {path} (build one with: python index_build.py --catalog ... --index {path})")
    if manifest.get("layout") != LAYOUT:
        raise IndexLoadError(
            f"the index at {path} was built by an older mmsearch (layout {manifest.get('layout', 1)}"
            f", now {LAYOUT}); rebuild it: python index_build.py --catalog {manifest.get('catalog')}"
            f" --model {manifest.get('model_spec')} --index {path}"
        )
    if expect_model_id is not None and manifest.get("model_id") != expect_model_id:
        raise IndexLoadError(
            f"the index at {path} was built with {manifest.get('model_id')!r}, but the loaded model "
            f"is {expect_model_id!r}; rebuild it with index_build.py --model, or load that model"
        )
    built = store_of(manifest)
    asked = built if store is None else store
    if not same_store(built, asked):
        raise IndexLoadError(
            f"the index at {path} was built into the vector store {built}, but this was started with "
            f"--vector-store {asked}; start it with --vector-store {built}, or rebuild the index into {asked}"
        )
    try:
        how = engine_kind(manifest.get("index_kind", "flat"), asked)
        engine = how.load(path / how.file, writable)
        vectors = np.load(path / VECTORS_FILE, mmap_mode="r")
        items = pd.read_parquet(path / ITEMS_FILE).rename(columns={"picture": "image_hash"})  # its name before
        pictures = pd.read_parquet(path / PICTURES_FILE) if (path / PICTURES_FILE).exists() else None
    except milvus_store.VectorStoreError as exc:
        raise IndexLoadError(f"the index at {path} cannot be searched: {exc}") from exc
    except (RuntimeError, OSError, ValueError) as exc:
        raise IndexLoadError(f"the index at {path} is damaged ({exc}); rebuild it with index_build.py") from exc
    # An engine shared by builds (a Milvus collection an update changes in place) may hold more than this build.
    held = manifest.get("faiss_total") if how.shared else how.count(engine)
    if held != manifest.get("faiss_total", held) or len(items) != manifest["item_count"]:
        raise IndexLoadError(f"the index at {path} does not match its manifest; rebuild it")
    return VectorIndex(engine, vectors, items, manifest, path, how, pictures)

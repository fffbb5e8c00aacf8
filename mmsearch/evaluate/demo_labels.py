"""How the demo's generated query set was made (assets/demo-queries.csv and assets/demo-qrels.csv), and the command that
writes it again: ``python -m mmsearch.evaluate.demo_labels --out assets``.

The queries are derived from the true attributes of the demo catalog's items, which the listings only partly say (see
demo.listing) and the images show. Grades: 2 = the item has every attribute the query names (and passes its filter);
1 = right kind, one other named attribute wrong; 0 = anything else.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import pandas as pd

from mmsearch.atomic import atomic_write_text
from mmsearch.index.filters import matching_rows, parse_filters
from mmsearch.ingest import demo

TAG_WORDS = {
    "new": "new",
    "favourite": "customer favourite",
    "durable": "made to last",
    "essential": "everyday essential",
}


def demo_queries(seed: int = 0, truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """Queries of five forms, two fifths of them again with a filter; alternate ones form the dev split (for choosing
    the hybrid weight) and the rest the test split (for the reported figures)."""
    rng = random.Random(seed)
    patterned = [p for p in demo.PATTERNS if p != "solid"]
    rows = []

    def add(kind: str, colour: str = "", pattern: str = "", tag: str = "", form: str = "") -> None:
        words = [TAG_WORDS[tag] if tag else "", colour, pattern, kind]
        rows.append(
            {
                "query": " ".join(w for w in words if w),
                "kind": kind,
                "colour": colour,
                "pattern": pattern,
                "tag": tag,
                "form": form,
                "filters": "",
            }
        )

    colours, kinds = list(demo.COLOURS), demo.KINDS
    for _ in range(40):
        add(rng.choice(kinds), rng.choice(colours), rng.choice(patterned), form="colour pattern kind")
    for _ in range(30):
        add(rng.choice(kinds), rng.choice(colours), form="colour kind")
    for _ in range(20):
        add(rng.choice(kinds), pattern=rng.choice(patterned), form="pattern kind")
    for _ in range(30):
        add(rng.choice(kinds), rng.choice(colours), tag=rng.choice(list(TAG_WORDS)), form="tag colour kind")
    for _ in range(20):
        add(rng.choice(kinds), pattern=rng.choice(patterned), tag=rng.choice(list(TAG_WORDS)), form="tag pattern kind")
    table = pd.DataFrame(rows).drop_duplicates("query").reset_index(drop=True)
    filtered = table.sample(frac=0.4, random_state=seed).copy()
    # A price cap at the kind's base price, or a facet on an attribute the query leaves open.
    filtered["filters"] = [
        f"price<={demo.BASE_PRICE[k]}" if i % 2 or (c and p) else "pattern=striped|checked" if c else "colour=red|blue"
        for i, (k, c, p) in enumerate(zip(filtered["kind"], filtered["colour"], filtered["pattern"]))
    ]
    table = pd.concat([table, filtered], ignore_index=True)
    truth = demo_truth() if truth is None else truth
    answerable = [bool((grades(q, truth) == 2).any()) for _, q in table.iterrows()]
    table = table[answerable].reset_index(drop=True)  # a filter can rule out every fully relevant item
    table.insert(0, "qid", [f"q{i:03d}" for i in range(len(table))])
    table["split"] = ["dev" if i % 2 == 0 else "test" for i in range(len(table))]
    return table


def demo_truth(n: int = 2048) -> pd.DataFrame:
    """The demo catalog's items with their true attributes (what write_catalog puts in its columns)."""
    items = demo.make_items(n, demo.CATALOG_SEED)
    return pd.DataFrame(
        [
            {
                "item_id": it.item_id,
                "category": it.kind,
                "colour": it.colour,
                "pattern": it.pattern,
                "tag": demo.tag(it),
                "price": it.price,
            }
            for it in items
        ]
    )


def grades(query: pd.Series, truth: pd.DataFrame) -> np.ndarray:
    """The grade of every item of ``truth`` for one query."""
    named = [a for a in ("colour", "pattern", "tag") if query[a]]
    misses = sum((truth[a] != query[a]).to_numpy(dtype=int) for a in named) if named else np.zeros(len(truth), int)
    out = np.where(misses == 0, 2, np.where((misses == 1) & bool(named), 1, 0))
    out[(truth["category"] != query["kind"]).to_numpy()] = 0
    if query["filters"]:
        passing = np.zeros(len(truth), dtype=bool)
        passing[matching_rows(truth, parse_filters(query["filters"]))] = True
        out[~passing] = 0
    return out


def qrels_for(queries: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for _, q in queries.iterrows():
        g = grades(q, truth)
        keep = np.flatnonzero(g)
        parts.append(pd.DataFrame({"qid": q["qid"], "item_id": truth["item_id"].to_numpy()[keep], "grade": g[keep]}))
    return pd.concat(parts, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmsearch.evaluate.demo_labels", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for demo-queries.csv and demo-qrels.csv")
    args = parser.parse_args(argv)
    queries = demo_queries()
    atomic_write_text(args.out / "demo-queries.csv", queries.to_csv(index=False))
    atomic_write_text(args.out / "demo-qrels.csv", qrels_for(queries, demo_truth()).to_csv(index=False))
    print(f"wrote {len(queries)} queries and their grades into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

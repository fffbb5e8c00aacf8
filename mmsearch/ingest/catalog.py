"""Catalog ingestion: every source becomes one validated table of items plus a list of the rows that were skipped.

Sources: a manifest (.csv, .jsonl, .parquet), a folder of images, a Hugging Face dataset
(``hf:<name or path>[:split]``), and the datasets mmsearch knows by name (ingest/datasets/: ``demo``,
``fashion-mnist[:train]``). A bad row never aborts ingestion: it is skipped with its reason, which ends up in the
index's report.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from mmsearch.ingest import datasets
from mmsearch.ingest.errors import CatalogError
from mmsearch.ingest.images import DEFAULT_MAX_PIXELS, ImageError, check_header, to_rgb

__all__ = ["Catalog", "CatalogError", "Skipped", "load_catalog", "validate"]

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".svg"}
CORE_COLUMNS = ["item_id", "image", "title", "description", "category", "price"]
PICTURES = "images"  # a product's several pictures: a JSON list, or paths separated by "|"
EMBEDDING_COLUMN = "embedding"


@dataclass
class Skipped:
    row: int | None
    item_id: str | None
    reason: str


@dataclass
class Catalog:
    name: str
    items: pd.DataFrame  # CORE_COLUMNS first, then the catalog's own columns; image paths are absolute
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Skipped] = field(default_factory=list)
    total_rows: int = 0

    def extra_columns(self) -> list[str]:
        return [c for c in self.items.columns if c not in CORE_COLUMNS]

    def skip(self, item_ids: list[str], reasons: list[str]) -> Catalog:
        """Drops items found bad later (e.g. truncated images found while encoding), keeping them in the report."""
        if not item_ids:
            return self
        rows = {iid: i for i, iid in enumerate(self.items["item_id"])}
        extra = [Skipped(rows.get(i), i, r) for i, r in zip(item_ids, reasons)]
        kept = self.items[~self.items["item_id"].isin(set(item_ids))].reset_index(drop=True)
        return Catalog(self.name, kept, self.skipped + extra, self.warnings, self.total_rows)

    def summary(self) -> str:
        return (
            f"{len(self.items)} items indexed from {self.total_rows} rows of {self.name}; "
            f"{len(self.skipped)} skipped, {len(self.warnings)} warnings"
        )


# --- sources -----------------------------------------------------------------------------------------------------


def read_catalog_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(path)
        if suffix == ".parquet":  # precomputed embeddings are read apart, as one buffer (mmsearch.precomputed)
            import pyarrow.parquet as pq

            names = [c for c in pq.read_schema(path).names if c != EMBEDDING_COLUMN]
            return pd.read_parquet(path, columns=names)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise CatalogError(f"cannot read manifest {path}: {exc}") from exc
    raise CatalogError(f"unsupported manifest type {suffix!r} (use .csv, .jsonl or .parquet)")


def _read_jsonl(path: Path) -> pd.DataFrame:
    # Line by line, so one broken line becomes one skipped row instead of an unreadable file.
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            rows.append(value if isinstance(value, dict) else {"__error__": "line is not a JSON object"})
        except json.JSONDecodeError as exc:
            rows.append({"__error__": f"invalid JSON on line {lineno}: {exc.msg}"})
    return pd.DataFrame(rows)


def folder_table(folder: Path, products: bool = False) -> pd.DataFrame:
    """A folder of pictures, one item each (ids and titles from file names); with ``products``, the pictures of a
    sub-folder are one product's (its id and title from the folder's name, its pictures in name order). Pictures
    sorted into sub-folders (``animals/cat1.jpg``) take the sub-folder as their category, as a folder of labelled
    pictures is usually laid out: shown with each result, a filter, and what image->image evaluation judges by."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if products:
        groups: dict[Path, list[Path]] = {}
        for p in files:
            groups.setdefault(p if p.parent == folder else p.parent, []).append(p)
        table = pd.DataFrame(
            {
                "item_id": [(k.with_suffix("") if k.is_file() else k).relative_to(folder).as_posix() for k in groups],
                "image": [str(v[0]) for v in groups.values()],
                "title": [_title(k) for k in groups],
                PICTURES: [json.dumps([str(p) for p in v]) for v in groups.values()],
            }
        )
        return _with_folder_category(table, [k.parent for k in groups], folder)
    ids = [p.relative_to(folder).with_suffix("").as_posix() for p in files]
    table = pd.DataFrame({"item_id": ids, "image": [str(p) for p in files], "title": [_title(p) for p in files]})
    return _with_folder_category(table, [p.parent for p in files], folder)


def _with_folder_category(table: pd.DataFrame, parents: list[Path], folder: Path) -> pd.DataFrame:
    """Each row's sub-folder (relative to the catalog's folder) as its category, blank for a picture at the top."""
    table["category"] = ["" if p == folder else p.relative_to(folder).as_posix() for p in parents]
    return table


def _title(path: Path) -> str:
    return (
        (path.stem if path.suffix.lower() in IMAGE_EXTENSIONS else path.name)
        .replace("_", " ")
        .replace("-", " ")
        .strip()
    )


def hf_table(
    spec: str, data_dir: Path, image_column: str, text_column: str, id_column: str = "", columns: str = ""
) -> pd.DataFrame:
    """A Hugging Face dataset (hub name, or a folder from ``save_to_disk``), its images written out as files so the
    gallery can serve them and encoding can run in DataLoader workers. ``columns`` renames the dataset's other
    columns ('articleType:category,baseColour:colour') so filters and results use the catalog's usual names."""
    import datasets

    body = spec[len("hf:") :]
    name, split = (body.rsplit(":", 1) + ["train"])[:2] if ":" in body else (body, "train")
    local = Path(name)
    if local.is_dir() and ((local / "dataset_dict.json").exists() or (local / "state.json").exists()):
        ds = datasets.load_from_disk(str(local))
        ds = ds[split] if isinstance(ds, datasets.DatasetDict) else ds
    else:
        ds = datasets.load_dataset(name, split=split)
    rename = parse_renames(columns)
    # A classification dataset's labels (ClassLabel: fashion_mnist, cifar10, food101, ...) are numbers standing for
    # names: each becomes its name, under the --hf-columns name it is given or as the catalog's category, and the
    # first one is the title when the dataset has no text column.
    labels = {c: f for c, f in ds.features.items() if isinstance(f, datasets.ClassLabel)}
    for col in labels:
        if col not in rename and "category" not in ds.column_names and "category" not in rename.values():
            rename[col] = "category"
            break
    if text_column not in ds.column_names and labels:
        text_column = next(iter(labels))
    for col in (image_column, text_column, *([id_column] if id_column else []), *rename):
        if col not in ds.column_names:
            raise CatalogError(
                f"{spec}: no column {col!r}; columns are {ds.column_names} (set --hf-image-column, "
                "--hf-text-column, --hf-id-column or --hf-columns)"
            )
    names = {c: f.names for c, f in labels.items()}
    from mmsearch.settings import slug

    out = Path(data_dir) / "hf" / slug(body) / "images"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, rec in enumerate(tqdm(ds, desc=f"writing {spec} images", unit="img")):
        rec = {
            k: (names[k][v] if k in names and isinstance(v, int) and 0 <= v < len(names[k]) else v)
            for k, v in rec.items()
        }
        item_id = str(rec[id_column]) if id_column else f"{i:07d}"
        text = rec[text_column]
        text = text[0] if isinstance(text, list) and text else text  # Flickr30k keeps 5 captions per image
        path = out / f"{slug(item_id)}{_picture_suffix(rec[image_column])}"
        row = {"item_id": item_id, "image": str(path), "title": str(text)}
        row |= {
            rename.get(k, k): v
            for k, v in rec.items()
            if k not in (image_column, id_column) and (k != text_column or k in rename) and _is_scalar(v)
        }
        try:
            if not path.exists():
                to_rgb(rec[image_column]).save(path, **({"quality": 92} if path.suffix == ".jpg" else {}))
        except Exception as exc:
            row["__error__"] = f"dataset image cannot be decoded ({exc})"
        rows.append(row)
    return pd.DataFrame(rows)


def _picture_suffix(image: object) -> str:
    """PNG for small pictures, whose every pixel shows when the gallery scales them up (Fashion-MNIST's are 28x28);
    JPEG for photographs, a tenth of the disk."""
    size = getattr(image, "size", None)
    return ".png" if size is not None and max(size) <= 128 else ".jpg"


def parse_renames(spec: str) -> dict[str, str]:
    """'articleType:category, baseColour:colour' -> {'articleType': 'category', 'baseColour': 'colour'}."""
    out = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        source, sep, target = (x.strip() for x in part.partition(":"))
        if not sep or not source or not target or target in ("item_id", "image", "title"):
            raise CatalogError(f"--hf-columns: {part!r} should be FROM:TO with TO not item_id, image or title")
        out[source] = target
    return out


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def load_catalog(
    source: str,
    data_dir: Path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    hf_image_column: str = "image",
    hf_text_column: str = "caption",
    hf_id_column: str = "",
    known: set[tuple[str, int, int]] | None = None,
    hf_columns: str = "",
    settings=None,
) -> Catalog:
    """Reads any supported source and validates every row. A named dataset (``demo``, ``fashion-mnist[:train]``:
    ingest/datasets/) writes its catalog from ``settings`` (its own settings: demo_size, fashion_mnist_dir; the
    defaults without). ``known``: (path, size, mtime_ns) of pictures a previous build already read, whose headers
    need no second look."""
    dataset = datasets.find(source)
    if dataset is not None:
        manifest = dataset.write_catalog(source, Path(data_dir), settings)
        return validate(read_catalog_table(manifest), manifest.parent, source, max_pixels, known)
    if source.startswith("hf:"):
        table = hf_table(source, data_dir, hf_image_column, hf_text_column, hf_id_column, hf_columns)
        return validate(table, Path("/"), source, max_pixels, known)
    path = Path(source).expanduser()
    if path.is_dir():
        table = folder_table(path, products=bool(getattr(settings, "product_folders", False)))
        return validate(table, path, path.name, max_pixels, known)
    if not path.exists():
        raise CatalogError(
            f"catalog not found: {source} (a manifest file, an image folder, hf:<dataset>, or one of "
            f"{', '.join(datasets.datasets())})"
        )
    return validate(read_catalog_table(path), path.parent, path.stem, max_pixels, known)


def load_configured(config, known: set[tuple[str, int, int]] | None = None) -> Catalog:
    """``load_catalog`` with a command's catalog settings (the build's and tuning's one way to read a catalog)."""
    return load_catalog(
        config.catalog,
        config.data_dir,
        config.max_upload_pixels,
        config.hf_image_column,
        config.hf_text_column,
        config.hf_id_column,
        known=known,
        hf_columns=config.hf_columns,
        settings=config,
    )


def validate(
    table: pd.DataFrame, base: Path, name: str, max_pixels: int, known: set[tuple[str, int, int]] | None = None
) -> Catalog:
    for col in ("item_id", "image"):
        if col not in table.columns and not (col == "image" and PICTURES in table.columns):
            raise CatalogError(f"{name}: the manifest has no {col!r} column (columns: {list(table.columns)})")
    skipped: list[Skipped] = []
    warnings: list[Skipped] = []
    seen: dict[str, int] = {}
    checked: dict[str, str | None] = {}
    keep: list[dict] = []
    base_dir, resolve = str(base), _resolver()
    records = table.to_dict("records")
    for row_no, rec in enumerate(tqdm(records, desc=f"checking {name}", unit="row", leave=False), start=1):
        item_id = _text(rec.get("item_id"))
        if _text(rec.get("__error__")):
            skipped.append(Skipped(row_no, item_id or None, _text(rec["__error__"])))
            continue
        if not item_id:
            skipped.append(Skipped(row_no, None, "empty item_id"))
            continue
        if item_id in seen:
            skipped.append(Skipped(row_no, item_id, f"duplicate item_id (first seen on row {seen[item_id]})"))
            continue
        try:
            named = picture_list(rec.get(PICTURES))
        except ValueError as exc:
            skipped.append(Skipped(row_no, item_id, f"{PICTURES}: {exc}"))
            continue
        image = _text(rec.get("image")) or (named[0] if named else "")
        if not image:
            skipped.append(Skipped(row_no, item_id, "empty image path"))
            continue
        # an absolute image path stays as given
        paths = [resolve(os.path.join(base_dir, os.path.expanduser(p))) for p in dict.fromkeys([image, *named])]
        for path in paths:
            if path not in checked and known and _unchanged(path, known):
                checked[path] = None
            if path not in checked:  # many rows may share one picture file
                try:
                    check_header(path, max_pixels)
                    checked[path] = None
                except ImageError as exc:
                    checked[path] = str(exc)
        path = paths[0]
        if checked[path] is not None:
            skipped.append(Skipped(row_no, item_id, checked[path]))
            continue
        for other in paths[1:]:  # a product keeps its other pictures that can be read
            if checked[other] is not None:
                warnings.append(Skipped(row_no, item_id, f"picture left out: {checked[other]}"))
        seen[item_id] = row_no
        clean = {k: v for k, v in rec.items() if k not in ("__error__", EMBEDDING_COLUMN)}
        clean |= {
            "item_id": item_id,
            "image": path,
            "title": _text(rec.get("title")) or Path(image).stem.replace("_", " "),
            "description": _text(rec.get("description")),
            "category": _text(rec.get("category")),
        }
        if PICTURES in table.columns:  # every picture of the product, the first shown first (the listing's image)
            clean[PICTURES] = json.dumps([p for p in paths if checked[p] is None])
        clean["price"], problem = _price(rec.get("price"))
        if problem:
            warnings.append(Skipped(row_no, item_id, problem))
        keep.append(clean)
    items = pd.DataFrame(keep, columns=_columns(table.columns)) if keep else pd.DataFrame(columns=CORE_COLUMNS)
    extra = [c for c in items.columns if c not in CORE_COLUMNS]
    items[extra] = items[extra].astype(object).where(items[extra].notna(), "").astype(str)
    return Catalog(name, items.reset_index(drop=True), skipped, warnings, total_rows=len(records))


def picture_list(value: object) -> list[str]:
    """The pictures a manifest cell names: a list (JSON lines, parquet), a JSON list in text, or paths separated by
    "|"; ValueError when it is neither."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if hasattr(value, "tolist"):  # parquet's lists arrive as arrays
        value = value.tolist()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"not a JSON list of paths ({exc})") from None
        else:
            return [p.strip() for p in text.split("|") if p.strip()]
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValueError("a list of picture paths is expected")
    return [p.strip() for p in value if p.strip()]


def _resolver():
    """Like Path.resolve, but each folder is resolved once: a catalog's pictures share a few folders, and resolving
    every path anew costs more than reading it. A picture that is itself a symbolic link is still followed."""
    folders: dict[str, str] = {}

    def resolve(path: str) -> str:
        folder, name = os.path.split(os.path.normpath(path))
        if folder not in folders:
            folders[folder] = os.path.realpath(folder)
        full = os.path.join(folders[folder], name)
        return os.path.realpath(full) if os.path.islink(full) else full

    return resolve


def _unchanged(path: str, known: set[tuple[str, int, int]]) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (path, st.st_size, st.st_mtime_ns) in known


def _columns(columns) -> list[str]:
    # A precomputed embedding is read by mmsearch.byo, not kept as a metadata column.
    return CORE_COLUMNS + [c for c in columns if c not in CORE_COLUMNS and c not in ("__error__", EMBEDDING_COLUMN)]


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _price(value: object) -> tuple[float, str | None]:
    raw = _text(value)
    if not raw:
        return float("nan"), None
    try:
        price = float(raw.replace(",", "").lstrip("$€£"))
    except ValueError:
        return float("nan"), f"price {raw!r} is not a number; kept without a price"
    if price < 0 or math.isinf(price):
        return float("nan"), f"price {raw!r} is out of range; kept without a price"
    return price, None


def write_report(catalog: Catalog, out_dir: Path) -> Path:
    """The skipped-rows report that sits next to the index: every row that is not searchable, and why."""
    path = Path(out_dir) / "skipped.csv"
    rows = [{"row": s.row, "item_id": s.item_id, "kind": "skipped", "reason": s.reason} for s in catalog.skipped]
    rows += [{"row": s.row, "item_id": s.item_id, "kind": "warning", "reason": s.reason} for s in catalog.warnings]
    pd.DataFrame(rows, columns=["row", "item_id", "kind", "reason"]).to_csv(path, index=False)
    return path


def catalog_key(source: str) -> str:
    """The catalog's part of every Feast key: its name and a hash of where it lives, so two catalogs whose item ids
    overlap (ids like 1, 2, 3 are common) keep separate rows in one data directory."""
    from mmsearch.settings import slug

    if source.startswith("hf:") or datasets.find(source) is not None:
        return slug(source)
    path = Path(source).expanduser().resolve()
    return f"{slug(path.stem)}-{hashlib.blake2b(str(path).encode(), digest_size=4).hexdigest()}"

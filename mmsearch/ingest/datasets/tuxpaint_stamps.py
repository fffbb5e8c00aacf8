"""Tux Paint's stamps: about 1,050 real colour pictures (photos cut out on transparent backgrounds, drawings and
cartoons; PNG and SVG) of animals, food, clothes, tools, vehicles and more, in about 150 folders, each captioned in
English and some 60 other languages. As a catalog (``stamps``): the folder as category, the English caption as title,
the other languages' captions as columns ``title_<lang>``; and as evaluation material, with query sets judged by
folder, written by hand before anything was tuned (English, and Spanish, French and German), dev and test halves.

Read in place from Debian's package ``tuxpaint-stamps-default`` (GPL-2), /usr/share/tuxpaint/stamps: the pictures
are never copied (the manifest names their paths).

Beside each picture a ``.txt`` holds the English caption on its first line and ``lang.utf8=caption`` on the others.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mmsearch.atomic import atomic_write_text
from mmsearch.ingest.datasets._base import Dataset, Labelled, QuerySet
from mmsearch.ingest.errors import CatalogError
from mmsearch.resources import ASSETS_DIR

SOURCE = "stamps"
DEBIAN_DIR = Path("/usr/share/tuxpaint/stamps")
ASSETS = ASSETS_DIR / "stamps"
PICTURES = (".png", ".svg")  # a stamp shipped as both is indexed once, from its PNG
# Languages kept as columns: the query sets' and the most widely captioned others (each on 90%+ of the stamps).
LANGUAGES = ("es", "fr", "de", "it", "pt", "nl", "pl", "ru", "ja", "zh_CN")
# Folder parts that say how a thing is drawn, not what it is: "food/fruit/cartoon" is fruit.
STYLE_PARTS = {"cartoon"}
LABELLED_SIDE = 260  # the labelled stamps' square: the side the zero-shot models read (Lite2 at 260 px)
MISSING = (
    "Tux Paint's stamps are not installed: apt-get install tuxpaint-stamps-default (it puts them in {dir}), "
    "or give --stamps-dir"
)


def captions(path: Path) -> dict[str, str]:
    """A stamp's captions by language ('en' first); empty when it has no caption file."""
    text = path.with_suffix(".txt")
    if not text.is_file():
        return {}
    lines = text.read_text(encoding="utf-8", errors="replace").splitlines()
    found = {"en": lines[0].strip()} if lines and "=" not in lines[0] else {}
    for line in lines[1:]:
        lang, sep, caption = line.partition("=")
        if sep and caption.strip():
            found.setdefault(lang.removesuffix(".utf8"), caption.strip())
    return found


def category(folder: Path) -> str:
    parts = [p for p in folder.parts if p not in STYLE_PARTS]
    return "/".join(parts) or "stamps"


def title_of(path: Path, english: str | None) -> str:
    if english:
        return english.rstrip(".").strip()
    return path.stem.replace("_", " ").replace("-", " ").strip()


def table(directory: Path = DEBIAN_DIR) -> pd.DataFrame:
    """One row per stamp: item_id (its path under the folder, without suffix), image, title, category, the
    captions."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CatalogError(MISSING.format(dir=directory))
    chosen: dict[Path, Path] = {}
    for path in sorted(p for p in directory.rglob("*") if p.suffix.lower() in PICTURES and p.is_file()):
        stem = path.relative_to(directory).with_suffix("")
        if stem not in chosen or path.suffix.lower() == ".png":
            chosen[stem] = path
    if not chosen:
        raise CatalogError(f"{directory} holds no PNG or SVG pictures: " + MISSING.format(dir=directory))
    rows = []
    for stem, path in chosen.items():
        said = captions(path)
        row = {
            "item_id": stem.as_posix(),
            "image": str(path),
            "title": title_of(path, said.get("en")),
            "category": category(stem.parent),
        }
        row |= {f"title_{lang}": said.get(lang, "") for lang in LANGUAGES}
        rows.append(row)
    return pd.DataFrame(rows)


def write_catalog(data_dir: Path, directory: Path = DEBIAN_DIR) -> Path:
    """The stamps as a manifest under ``data_dir`` (rewritten when the package's pictures change)."""
    manifest = Path(data_dir) / SOURCE / "items.csv"
    text = table(directory).to_csv(index=False)
    if not manifest.exists() or manifest.read_text() != text:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(manifest, text)
    return manifest


def labelled(directory: Path = DEBIAN_DIR, side: int = LABELLED_SIDE) -> Labelled:
    """Every stamp that renders, on white in a ``side`` square, labelled by folder; a folder is named by its last
    part ("animals/birds": birds), which the templates caption."""
    from mmsearch.ingest.images import ImageError, load_image, on_white_square

    rows = table(directory)
    folders = sorted(set(rows["category"]))
    pictures, labels = [], []
    for path, folder in tqdm(zip(rows["image"], rows["category"]), total=len(rows), desc="reading the stamps"):
        try:
            picture = load_image(path, svg_side=side)
        except ImageError:
            continue  # the few SVGs that do not render are left out here as in the catalog
        picture.thumbnail((side, side))
        pictures.append(np.asarray(on_white_square(picture, side)))
        labels.append(folders.index(folder))
    names = tuple(f.rsplit("/", 1)[-1].replace("_", " ") for f in folders)
    return Labelled("stamps", np.stack(pictures), np.asarray(labels), _distinct(names, folders))


def _distinct(names: tuple[str, ...], folders: list[str]) -> tuple[str, ...]:
    """Folder names, the whole path where two folders end alike ("symbols money euro coins")."""
    return tuple(n if names.count(n) == 1 else f.replace("/", " ").replace("_", " ") for n, f in zip(names, folders))


class Stamps(Dataset):
    def write_catalog(self, spec: str, data_dir: Path, settings) -> Path:
        if spec != SOURCE:
            raise CatalogError(f"{spec!r}: the stamps have one catalog, {SOURCE}")
        return write_catalog(Path(data_dir), _folder(settings))

    def labelled(self, split: str, settings) -> Labelled:
        return labelled(_folder(settings))


def _folder(settings) -> Path:
    return Path(getattr(settings, "stamps_dir", None) or DEBIAN_DIR)


DATASET = Stamps(
    SOURCE,
    "Tux Paint's stamps",
    {
        "stamps": QuerySet(
            "Stamps: English, Spanish, French and German queries (written by hand)",
            ASSETS / "queries.csv",
            ASSETS / "qrels.csv",
        ),
    },
    templates=ASSETS / "templates.txt",
    unmatched=ASSETS / "unmatched-queries.csv",
    classified="",  # every stamp: the stamps have no splits
)

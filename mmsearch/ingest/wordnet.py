"""WordNet 3.0's nouns and what each is a kind of, read in place from Debian's ``wordnet-base``
(``/usr/share/wordnet``; Princeton's WordNet licence).

Search asks one thing of it: which words name a kind of thing a catalog's words name ("stringed instrument" for a
catalog that says "violin", "extremity" for one that says "hand"), so that a query in such words is not taken for a
query about something the catalog lacks (search/broader_terms.py). nltk's WordNet reader cannot open Debian's copy
(it wants a ``lexnames`` file that the package does not ship), and one list of nouns with their hypernyms is all
that is needed: the database's noun files are read as wndb(5WN) describes them, once per process (0.8 s; 57 MB kept,
with their stems, for the next build swapped in).

Files whose sha256 is not WordNet 3.0's are not read (a warning says which): another version's offsets and senses
would name other kinds.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

FOLDER = Path("/usr/share/wordnet")
SHA256 = {
    "data.noun": "fea17d2f9656611334eac790e5d69e47645fa180c4aa481fb4cd9b3520754ca2",
    "noun.exc": "2b5d675c380b39ecf595af9fa9d4e7feb1d58c643b0bff08c40ed5bfe41fab7a",
    "index.noun": "a490d99d93d017bf4822fe2f0ffa51fd73911ce271dc7535fade21f8814b5a04",
}
INSTALL_HINT = "apt-get install wordnet-base"
HYPERNYMS = ("@", "@i")  # a synset's pointers to the kinds it is one of (class and instance)
log = logging.getLogger("mmsearch.ingest")


@dataclass(frozen=True)
class Nouns:
    """Each noun lemma's senses, each sense's lemmas and the senses it is a kind of, and irregular plurals."""

    senses: dict[str, tuple[int, ...]]  # "hand" -> synset offsets, the commonest sense first
    lemmas: dict[int, tuple[str, ...]]  # offset -> ("bowed stringed instrument", "string")
    hypernyms: dict[int, tuple[int, ...]]
    plurals: dict[str, tuple[str, ...]]  # "oxen" -> ("ox",)

    def kinds(self, word: str, depth: int, senses: int | None = None) -> set[str]:
        """The lemmas of every sense up to ``depth`` kinds above ``word``'s (or its singular's) commonest ``senses``
        (all of them by default)."""
        frontier = {s for w in (word, *self.plurals.get(word, ())) for s in self.senses.get(w, ())[:senses]}
        found: set[str] = set()
        for _ in range(depth):
            frontier = {h for s in frontier for h in self.hypernyms.get(s, ())}
            found.update(name for s in frontier for name in self.lemmas[s])
        return found


def _verified(path: Path) -> bool:
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    if found != SHA256[path.name]:
        log.warning("%s has sha256 %s, not WordNet 3.0's %s: not read", path, found, SHA256[path.name])
        return False
    return True


def _entries(path: Path) -> Iterator[str]:
    """A WordNet database file's lines, past the licence at its top (the lines that start with two spaces)."""
    with path.open(encoding="latin-1") as lines:
        yield from (line for line in lines if not line.startswith("  "))


@cache
def nouns(folder: Path = FOLDER) -> Nouns | None:
    """WordNet's nouns, or None where they are not installed (``apt-get install wordnet-base``) or not WordNet 3.0."""
    data, index, plurals_file = (folder / name for name in ("data.noun", "index.noun", "noun.exc"))
    if not all(f.is_file() for f in (data, index, plurals_file)):
        log.info("WordNet is not installed at %s (%s): no broader terms", folder, INSTALL_HINT)
        return None
    if not all([_verified(f) for f in (data, index, plurals_file)]):
        return None
    lemmas: dict[int, tuple[str, ...]] = {}
    hypernyms: dict[int, tuple[int, ...]] = {}
    for line in _entries(data):
        fields = line.split(" | ", 1)[0].split()
        offset, count = int(fields[0]), int(fields[3], 16)
        at = 4 + 2 * count
        pointers = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(int(fields[at]))]
        lemmas[offset] = tuple(fields[4 + 2 * i].replace("_", " ").lower() for i in range(count))
        hypernyms[offset] = tuple(int(p[1]) for p in pointers if p[0] in HYPERNYMS and p[2] == "n")
    senses: dict[str, tuple[int, ...]] = {}
    for line in _entries(index):
        fields = line.split()  # lemma, pos, senses, pointer kinds..., senses, tagged senses, offsets by frequency
        count = int(fields[2])
        senses[fields[0].replace("_", " ")] = tuple(int(o) for o in fields[-count:])
    plurals: dict[str, tuple[str, ...]] = {}
    for line in plurals_file.read_text(encoding="latin-1").splitlines():
        inflected, *bases = line.split()
        plurals[inflected.replace("_", " ")] = tuple(b.replace("_", " ") for b in bases)
    return Nouns(senses, lemmas, hypernyms, plurals)

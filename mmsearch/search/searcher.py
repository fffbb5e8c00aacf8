"""Query time: a checked request (request.py) becomes an answer. Its embedding (query.py), the ranked lists over the
loaded snapshot (ranking.py), and whether the hits match what was asked (match.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmsearch.encode.encoders import Encoder, load_encoder, picture_query
from mmsearch.index import vectors as vindex
from mmsearch.search.expansion import CategoryWords
from mmsearch.search.facets import count, parse_facets
from mmsearch.search.match import GOOD, WEAK, MatchRule, known_shares
from mmsearch.search.query import QueryEncoder
from mmsearch.search.ranking import FUSION_DEPTH, Ranking
from mmsearch.search.request import MODES, SearchRequest
from mmsearch.search.results import Answer, Hit, ItemNotFound, Page
from mmsearch.search.snapshot import LoadedIndex, Snapshot
from mmsearch.search.sorting import parse_sort, sorted_rows
from mmsearch.search.translations import Translations
from mmsearch.settings import Settings
from mmsearch.store.features import FeatureStore

__all__ = ["MODES", "Searcher", "SearchRequest"]


class Searcher:
    """Answers requests over the loaded index, read from one snapshot per request (a newer build may be swapped in
    meanwhile: see snapshot.py)."""

    def __init__(self, encoder: Encoder, index: vindex.VectorIndex, store: FeatureStore, config: Settings):
        if index.model_id != encoder.model_id:
            raise vindex.IndexLoadError(f"index built with {index.model_id!r} but the model is {encoder.model_id!r}")
        self.encoder, self.store, self.config = encoder, store, config
        self.loaded = LoadedIndex(Snapshot.of(index, config), encoder.model_id, config)
        self.queries = QueryEncoder(encoder, config, self._sampled)
        self.categories = CategoryWords(encoder, config)
        self.translations = Translations(encoder)
        # A text tower is opened in ONNX Runtime (exported the first time ever) or frozen at its first call: not on a
        # visitor's
        encoder.encode_text(["warm up"])
        self.queries.language("warm up")  # a language guesser reads py3langid's model at its first call (0.3 s)
        known_shares(self.snapshot.keyword.query_stems, "warm up")  # as does the match's, for the words' language
        self.snapshot.warm()
        store.warm()  # Feast's first read: 0.25 s
        self.categories.of(self.snapshot)
        if self.translations.wanted:
            self.translations.vectors(self.snapshot.broader.nouns)  # the catalog's English nouns: 1.3 s with USE
        if self._sampled():
            self.queries.general.tower()  # loaded now, not at the first upload

    def _sampled(self) -> bool:
        """Whether the served index keeps a picture sample that an upload's features compare with: one of the tower
        the served model's uploads are read by (features of two towers do not compare)."""
        pictures = self.snapshot.pictures
        return pictures is not None and pictures.tower == self.queries.general.name

    @classmethod
    def open(cls, config: Settings, encoder: Encoder | None = None) -> Searcher:
        encoder = encoder or load_encoder(config.model, config.device)
        index = vindex.load(
            config.resolved_index(encoder.model_id), expect_model_id=encoder.model_id, store=config.vector_store
        )
        data_dir = Path(index.manifest.get("data_dir", config.data_dir))
        online = index.manifest.get("online_store", config.online_store)
        store = FeatureStore(data_dir, online, config.listing_cache, config.store_timeout_s)
        return cls(encoder, index, store, config)

    @property
    def snapshot(self) -> Snapshot:
        """What a request reads from; take it once per request."""
        return self.loaded.snapshot

    @property
    def index(self) -> vindex.VectorIndex:
        return self.loaded.snapshot.index

    @property
    def match_rule(self) -> MatchRule:
        c = self.config
        similarity = c.match_similarity or getattr(self.queries.encoder, "match_similarity", None) or 1.01
        return MatchRule(c.match_words, c.match_standing, c.match_image_standing, c.match_affinity, similarity)

    def request(self, **fields: object) -> SearchRequest:
        """A request checked against this server's limits (QueryError says what is wrong)."""
        return SearchRequest.of(self.config.max_query_chars, self.config.max_k, self.config.top_k, **fields)

    def search(self, request: SearchRequest) -> Answer:
        """Words, a picture, both, or an indexed item's similar items. ``mode`` vector, keyword (BM25 over the
        catalog's text) or hybrid (both fused; ``keyword_weight`` is the keyword list's share, scaled by the words'
        share when a picture comes too). Keyword search needs words: a picture alone is a vector search in any mode, and
        the answer's ``mode`` says so."""
        snap = self.snapshot
        ranking = Ranking(snap, self.store, self.config.rrf_k)
        depth = self.config.max_k  # every page of a query is cut from the same ranking, this deep
        if request.kind == "similar":  # the item's stored embedding: no picture decoded or encoded again
            self._stored(snap, request.item_id)  # an unknown id: 404
            slots = [slot for _, slot in snap.index.picture_slots(request.item_id)]  # each of its pictures asks
            stored = np.asarray(snap.index.vectors[slots], dtype=np.float32)
            queries = np.stack([self.scaled(row) for row in picture_query(self.queries.encoder, stored)])
            ranked = ranking.vector_ranked(queries, depth, request.filters)
            vector = queries[0]
            hits, page = self._paged(snap, ranking, ranked, request, vector, None)
            answer = Answer(hits, "vector", "similar", GOOD)
            answer.build, answer.page = snap.build, page
            return answer
        embedded = self.queries.embed(request)
        vector, words, has_image = embedded.vector, embedded.words, request.image is not None
        mode = request.mode or self.config.search_mode
        shares = known_shares(snap.keyword.query_stems, words, snap.broader) if words else (None, None)
        coverage, content_coverage = shares
        searched = self.scaled(vector if has_image or not words else self.categories.expanded(snap, vector))
        bm25 = None
        if (
            not words or mode == "vector"
        ):  # a picture alone is a vector search, whatever the mode asked (the answer says)
            mode, ranked = "vector", ranking.vector_ranked(searched, depth, request.filters)
        else:
            weight = self.config.keyword_weight if request.keyword_weight is None else request.keyword_weight
            if has_image:  # the words' side of the fusion shrinks with the picture's share of the query
                weight *= 1.0 - (self.config.image_weight if request.image_weight is None else request.image_weight)
            # The keyword list answers only the words it knows ("stripped mug", a real word no longer "corrected":
            # "mug"), so its share of the fusion shrinks with theirs: a rule, not a tuned number (docs/quality.md).
            ranked, bm25 = ranking.word_ranked(
                searched, words, embedded.negative, depth, mode, weight * coverage, request.filters
            )
        hits, page = self._paged(snap, ranking, ranked, request, searched, bm25)
        phrases = None if has_image else self.categories.of(snap)
        affinity = phrases.affinity(vector) if phrases is not None else None
        coverage = None if has_image else content_coverage
        if coverage is not None and coverage < 1 and self.translations.says(snap.broader.nouns, words, vector):
            coverage = 1.0  # another language's words for one of the catalog's English nouns
        best = [item_id for item_id, _ in page.relevant[: request.k or self.config.top_k]]
        answer = self._answer(snap, vector, hits, best, mode, request.kind, coverage, affinity)
        answer.language, answer.build, answer.page = embedded.language, snap.build, page
        if has_image and snap.pictures is not None and embedded.general is not None:
            if not snap.pictures.familiar(embedded.general):  # a picture unlike any of the catalog's
                answer.match = WEAK
        return answer

    def _paged(self, snap, ranking, ranked, request, vector, bm25) -> tuple[list[Hit], Page]:
        """The page a request asks for, dressed, out of every match (``ranked``, relevance first): those under the
        cut-off dropped, the facets counted over the rest, the rest sorted if asked, then ``k`` from ``offset``."""
        if request.min_score is not None:
            ranked = [(item_id, score) for item_id, score in ranked if score >= request.min_score]
        relevant = ranked
        rows = np.fromiter((snap.index.row(item_id) for item_id, _ in ranked), np.int64, len(ranked))
        facets = count(snap.columns, parse_facets(request.facets), rows) if request.facets else None
        if (order := parse_sort(request.sort)) is not None:
            ranked = [ranked[at] for at in sorted_rows(snap.columns, order, rows)]
        start, k = request.offset or 0, request.k or self.config.top_k
        hits = ranking.dressed(ranked[start : start + k])
        for h in hits:
            if bm25 is None:
                h.similarity = h.score
            else:
                ranking.scored(h, vector, bm25)
            if snap.index.pictures is not None:
                ranking.closest_picture(h, vector)
        # The next page is one this server takes with the same k (offset + k within max_k), as Elasticsearch's
        # from + size window: with a k that does not divide max_k the last few matches are past the last page.
        after = start + k
        following = after if after < len(ranked) and after + k <= self.config.max_k else None
        return hits, Page(start, len(ranked), following, facets, relevant)

    def _answer(self, snap, vector, hits, best, mode, kind, coverage, affinity) -> Answer:
        """The hits with their match (match.py): how far the best of the query's matches (``best``: item ids by
        relevance, whatever the page and order shown) stands above the catalog, seen from the query as typed (an
        expanded query's own similarities would flatter one for what the catalog lacks), and for words alone
        (``coverage`` None with a picture) the share of them that the catalog knows."""
        searched = self.scaled(vector)  # scores as cosines (the standing is the same at any scale)
        similarities = [float(snap.index.vector(item_id) @ searched) for item_id in best]
        top = max(similarities) if similarities else None
        similarity = None if top is None else round(top, 4)
        standing = None if top is None else round(snap.spread.standing(searched, top), 3)
        match = self.match_rule.decide(standing, coverage, affinity, similarity)
        rounded = None if affinity is None else round(affinity, 4)
        answer = Answer(hits, mode, kind, match, standing, rounded, coverage)
        answer.similarity = similarity
        return answer

    def scaled(self, query: np.ndarray) -> np.ndarray:
        """The unit query as searched: as it is, except for a model whose rows hold two spaces side by side
        (zero-shot), which scales it so that scores stay cosines (encode/models/zero_shot.py)."""
        scale = getattr(self.queries.encoder, "score_scale", None)
        return query if scale is None else query * scale(query)

    @staticmethod
    def _stored(snap: Snapshot, item_id: str) -> np.ndarray:
        if item_id not in snap.index:
            raise ItemNotFound(f"No item {item_id!r} in this index.")
        return snap.index.vector(item_id)

    def candidates(self, request: SearchRequest, depth: int = FUSION_DEPTH) -> tuple[list, list]:
        """The two lists hybrid search fuses, as index rows: by embedding, and (row, BM25) by keywords (for tuning
        the fusion on labelled queries without searching again)."""
        snap = self.snapshot
        ranking = Ranking(snap, self.store, self.config.rrf_k)
        embedded = self.queries.embed(request)
        rows, clauses = ranking.word_rows(request.filters, embedded.negative)
        return ranking.lists(self.categories.expanded(snap, embedded.vector), embedded.words, rows, depth, clauses)

    def item(self, item_id: str) -> Hit:
        """An indexed item's listing (its score is 1: it is itself)."""
        snap = self.snapshot
        self._stored(snap, item_id)
        return Ranking(snap, self.store, self.config.rrf_k).dressed([(item_id, 1.0)])[0]

"""Search: the query-time searcher over one loaded snapshot of an index, and what a search answers or refuses."""

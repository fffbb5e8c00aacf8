"""Index: the index directory (Faiss vectors, the items table), which Faiss kind for which catalog, BM25
keywords with rank fusion, and metadata filters."""

"""Index: the index directory (Faiss vectors, the items table), which Faiss kind for which catalog, the same kinds
in a Milvus server, BM25 keywords with rank fusion, and metadata filters."""

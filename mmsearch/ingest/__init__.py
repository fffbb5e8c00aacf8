"""Ingest: catalogs (manifests, folders, Hugging Face datasets), the demo catalog, pictures, text phrasing,
image-caption pairs and embeddings made elsewhere."""

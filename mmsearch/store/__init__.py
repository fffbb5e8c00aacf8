"""Store: the Feast feature store that holds every listing and embedding, and its read-ahead at start."""

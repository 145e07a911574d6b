"""The photo library engine: catalogue, vector index, indexer, queries, search and duplicates."""

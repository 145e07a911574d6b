"""Real components together: the console script, real SQLite files, real ONNX packs, real HTTP downloads."""

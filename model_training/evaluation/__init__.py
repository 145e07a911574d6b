"""Retrieval and zero-shot evaluation, on a torch model or on an exported pack."""

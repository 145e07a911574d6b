"""Training, evaluation and export of CLIP models for pixfind (torch + open_clip)."""

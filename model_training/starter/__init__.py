"""The offline ``starter`` model pack: EfficientNet-Lite + all-MiniLM-L6-v2 joined ConSE-style."""

from .build import PACK_NAME, PROTOTYPE, build_starter_pack

__all__ = ["PACK_NAME", "PROTOTYPE", "build_starter_pack"]

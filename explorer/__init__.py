"""Cross-Encoder Explorer: compare a bi-encoder ranking with a cross-encoder re-ranking."""

from .errors import ExplorerError

__all__ = ["ExplorerError"]

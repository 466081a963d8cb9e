"""Cross-Encoder Explorer: compare a bi-encoder ranking with a cross-encoder re-ranking."""

import os

# oneDNN (torch's CPU kernels for bf16) compiles and keeps a kernel per distinct tensor shape,
# up to 1,024 by default, and texts of every length make for many shapes: a long-running app
# grew by megabytes a request. 256 bounds that and still holds every shape the packed engine
# uses (its row counts are bucketed). Read by oneDNN when it starts, so set before torch runs.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "256")
os.environ.setdefault("LRU_CACHE_CAPACITY", "256")

from explorer.errors import ExplorerError  # noqa: E402

__all__ = ["ExplorerError"]

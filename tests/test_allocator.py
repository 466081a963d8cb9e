"""The allocator setting the engines rely on for speed (see explorer/engine/allocator.py)."""

import platform

import pytest

from explorer.engine.allocator import retain_freed_memory
from explorer.engine.catalog import DEFAULT_CROSS_ENCODER
from explorer.engine.loading import load_model


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_loading_a_model_makes_glibc_keep_freed_memory():
    """On glibc both mallopt calls must be accepted (glibc refuses an mmap threshold over 32 MiB, which
    would silently leave every large activation on fresh pages), and loading a model has applied it."""
    load_model(DEFAULT_CROSS_ENCODER, "cross")
    assert retain_freed_memory.cache_info().currsize == 1
    assert retain_freed_memory() is True

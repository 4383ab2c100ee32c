"""malloc keeps freed memory: a training step's buffers are reused without page faults."""

from __future__ import annotations

import resource
import sys

import pytest
import torch

from swapface.core.memory import retain_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_tensor_memory_is_reused_without_page_faults():
    assert retain_freed_memory()
    elements = 64 * 2**20  # 256 MiB of float32: 65536 pages if they had to be faulted in again
    assert torch.ones(elements).sum().item() == elements  # allocated, touched, freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    assert torch.ones(elements).sum().item() == elements
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 2000, faults

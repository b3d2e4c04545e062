"""Peak memory of one call: what the allocator held at its highest, minus what was there before.

On CUDA this is ``torch.cuda.max_memory_allocated``. CPU has no such counter, and resident-set
size is useless for this (glibc and oneDNN cache freed blocks, so RSS peaks depend on history, not
on the model), so on CPU a dispatch mode watches every tensor storage that an operator creates
during the call, forward and backward, and frees it from the count when the storage dies. Both
count tensor bytes only: parameters and inputs that existed before the call are not included,
gradients and activations saved for backward are.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


def _storage_key(tensor: torch.Tensor) -> int:
    try:
        return tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # sparse or storage-less tensors
        return -1


class LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of live tensor storages created while the mode is active, and their peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None) -> Any:
        # Views and in-place results share an input's storage: not new memory (this matters for
        # parameters, which predate the mode and are aliased by checkpointing's recomputation).
        inputs = {_storage_key(value) for value in tree_flatten((args, kwargs))[0] if isinstance(value, torch.Tensor)}
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if not isinstance(value, torch.Tensor) or value.device.type != "cpu":
                continue
            storage = value.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
            if size == 0 or key in self.live or key in inputs:
                continue
            self.live[key] = size
            self.current += size
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._release, key)
        return out


def peak_memory(fn: Callable[[], Any], device: torch.device) -> tuple[int, str]:
    """Run ``fn`` once and return (peak bytes it allocated beyond what was live before, how measured)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before, "cuda max_memory_allocated"
    with LiveTensorBytes() as counter:
        fn()
    return counter.peak, "live tensor bytes (dispatch mode)"

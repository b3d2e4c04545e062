"""Training options that trade speed or memory: they must not change the gradients."""

from __future__ import annotations

import pytest
import torch

from splitattn import create_model
from splitattn.bench import peak_memory


def _grads(model, x):
    model.zero_grad()
    model(x).sum().backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("name", ["resnest14d", "skresnet18"])
def test_block_checkpointing_and_channels_last_give_the_same_gradients(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=4, zero_init_last=False).eval()
    x = torch.randn(2, 3, 32, 32)
    plain = _grads(model, x)
    model.set_grad_checkpointing(True, granularity="block")
    for ours, reference in zip(_grads(model, x), plain, strict=True):
        torch.testing.assert_close(ours, reference)
    model.set_grad_checkpointing(False)
    model.to(memory_format=torch.channels_last)
    for ours, reference in zip(_grads(model, x.contiguous(memory_format=torch.channels_last)), plain, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)


def test_checkpointing_lowers_peak_memory():
    torch.manual_seed(0)
    model = create_model("resnest14d", num_classes=4).train()
    x = torch.randn(4, 3, 64, 64)
    peaks = {}
    for setting in (None, "stage", "block"):
        model.set_grad_checkpointing(setting is not None, granularity=setting or "stage")
        model.zero_grad(set_to_none=True)
        peaks[setting] = peak_memory(lambda: model(x).sum().backward(), torch.device("cpu"))[0]
    assert peaks["block"] < peaks[None] and peaks["stage"] < peaks[None]
    with pytest.raises(ValueError, match="granularity must be"):
        model.set_grad_checkpointing(True, granularity="layer")

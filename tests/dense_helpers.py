"""Shared pieces of the detection and segmentation tests: small settings and a thread limit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from splitattn import create_model
from splitattn.weights import save_state_dict

FAMILIES = ("resnest14d", "seresnet18", "skresnet18")  # ResNeSt, SE, SK: the smallest of each

# torchvision's detectors at toy scale: 64 px images, small anchors, few proposals, narrow heads.
SMALL_DETECTOR = dict(
    min_size=64, max_size=64, anchor_sizes=((8,), (16,), (32,), (64,), (128,)), fpn_channels=64,
    representation_size=128, rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100,
    rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50, rpn_batch_size_per_image=64,
    box_batch_size_per_image=32, box_detections_per_img=20,
)


@pytest.fixture
def one_thread():
    """Run on one intra-op thread: at 64 px the work per op is too small to share, and a second
    thread spinning against other processes on a busy 2-core machine made steps 5-20x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def classification_checkpoint(name: str, path: Path) -> dict[str, torch.Tensor]:
    """An ImageNet-style classifier checkpoint with non-trivial BN statistics, saved to ``path``."""
    torch.manual_seed(1)
    model = create_model(name)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    state = model.state_dict()
    save_state_dict(state, path)
    return state


def assert_backbone_matches(checkpoint: dict[str, torch.Tensor], body_state: dict[str, torch.Tensor]) -> None:
    """Every backbone tensor of the checkpoint is in the model unchanged (the classifier is dropped)."""
    expected = {k: v for k, v in checkpoint.items()
                if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    kept = {k: v for k, v in body_state.items() if not k.endswith("num_batches_tracked")}
    assert set(kept) == set(expected)
    for key, value in kept.items():
        assert torch.equal(value, expected[key]), key


def tensorboard_events(run_dir: Path):
    """The TensorBoard event files of a run, read back with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events

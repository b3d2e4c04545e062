"""Fitting ImageNet weights to a model built for another task: other classes, other input channels."""

from __future__ import annotations

import warnings

import torch


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """First-conv weights for ``in_chans`` input channels from weights trained on another count.

    One channel: the sum over the trained channels (a grey image is R = G = B, so the response to
    it is unchanged). More: the trained channels tiled, scaled so the expected response is kept.
    """
    trained = weight.shape[1]
    if in_chans == trained:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_chans // trained)
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (trained / in_chans)


def fit_to_model(
    state: dict[str, torch.Tensor],
    model_state: dict[str, torch.Tensor],
    first_conv: str,
    classifier: str,
    source: str,
) -> dict[str, torch.Tensor]:
    """Adapt the first conv to the model's input channels and drop a classifier of the wrong size.

    A dropped classifier is reported with a warning; the model keeps its freshly initialised head.
    """
    state = dict(state)
    conv_key = f"{first_conv}.weight"
    if conv_key in state and conv_key in model_state:
        wanted = model_state[conv_key].shape[1]
        if state[conv_key].shape[1] != wanted:
            state[conv_key] = adapt_input_conv(state[conv_key], wanted)
    head_keys = [k for k in state if k.startswith(f"{classifier}.")]
    # Another number of classes (or no classifier at all) is fine-tuning; other feature widths
    # mean another architecture, which the caller reports as a mismatch.
    other_classes = [k for k in head_keys if k not in model_state or model_state[k].shape[0] != state[k].shape[0]]
    if other_classes:
        trained = state.get(f"{classifier}.weight")
        trained_classes = trained.shape[0] if trained is not None else "?"
        wanted_classes = model_state[f"{classifier}.weight"].shape[0] if f"{classifier}.weight" in model_state else 0
        warnings.warn(
            f"{source}: classifier trained for {trained_classes} classes, model has {wanted_classes}; "
            "the classifier weights were not loaded and the new head is freshly initialised",
            stacklevel=4,
        )
        for key in head_keys:
            del state[key]
    return state

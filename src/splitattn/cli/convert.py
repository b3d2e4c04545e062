"""Convert a checkpoint between layouts (ours, official ResNeSt, timm) and formats (.pth, .safetensors).

The input may be a plain state dict or a training checkpoint wrapping one; it is loaded without
unpickling code. The output holds just the weights, written atomically.
"""

from __future__ import annotations

import argparse

from ..factory import create_model
from ..models import get_model_entry
from ..weights import TARGETS, export_state_dict, load_checkpoint_file, save_state_dict, unwrap_state_dict
from ..weights.load import check_fits, classifier_outputs, to_our_layout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="checkpoint to read (.pth, .pt or .safetensors)")
    parser.add_argument("output", help="file to write; the suffix picks the format")
    parser.add_argument("--model", required=True, help="zoo name of the architecture, e.g. resnest50")
    parser.add_argument("--from", dest="source", default="auto", choices=("auto", "ours", "official", "timm"),
                        help="layout of the input (default: recognised from the parameter names)")
    parser.add_argument("--to", dest="target", default="ours", choices=TARGETS, help="layout of the output")


def read_in_our_layout(path: str, model_name: str, source: str = "auto") -> dict:
    """Read ``path`` and return its weights in our layout, checked against the architecture."""
    state = unwrap_state_dict(load_checkpoint_file(path))
    entry = get_model_entry(model_name)
    first_conv = next((state[k] for k in (f"{entry.pretrained_cfg.first_conv}.weight", "layer0.conv1.weight")
                       if k in state), None)
    in_chans = first_conv.shape[1] if first_conv is not None else 3
    model = create_model(model_name, num_classes=classifier_outputs(state), in_chans=in_chans)
    expected = model.state_dict()
    state = to_our_layout(state, expected, model_name, None if source == "auto" else source)
    check_fits(state, expected, model_name, str(path))
    return state


def run(args: argparse.Namespace) -> int:
    state = read_in_our_layout(args.input, args.model, args.source)
    out = save_state_dict(export_state_dict(state, args.target, args.model), args.output)
    print(f"wrote {len(state)} tensors for {args.model} in {args.target} layout to {out}")
    return 0

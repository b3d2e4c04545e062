"""int8 for the feature maps the attention reads: the x86 quantizer's annotation, and one step more.

The x86 inductor quantizer gives a conv an int8 output only when the next op quantizes its input
(another conv, a residual add). The conv that feeds an attention layer is followed by pooling and
by the multiply or weighted sum that applies the weights, none of them int8 ops, so its output is
written in float32 and read back twice: by the pooling, and by the multiply. Annotating that output
makes oneDNN write uint8 (a quarter of the bytes) and inductor fuse the dequantize into the two
kernels that read it. Measured on an AVX-512 VNNI EPYC, two threads, resnest50 and seresnet50 at
224 px: 19-20% more images per second at batch 16, 2-4% at batch 1; top-1 agreement with float32
on the digits model unchanged (``docs/benchmarks.md``). ``sensitivity`` reports the rounding per
map (kind ``"attention input"``) before anything is decided.

This module imports torchao, so it is imported only when a model is quantized.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch.fx import GraphModule, Node
from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import QUANT_ANNOTATION_KEY, X86InductorQuantizer


def _is_feature_map(node: Node) -> bool:
    """A (N, C, H, W)-shaped value: what an attention pools (a classifier's logits are not one)."""
    value = node.meta.get("val")
    return isinstance(value, torch.Tensor) and value.ndim >= 4


CONVS = (torch.ops.aten.conv2d.default, torch.ops.aten.conv1d.default)


def _ends_conv_pattern(node: Node) -> bool:
    """``node`` is a quantized conv, or the activation (add, ...) fused after one: not, for instance,
    the quantizer's int8 multiply of two same-shape maps, which a split weighted sum at 1 x 1 is."""
    for _ in range(3):  # conv -> add -> activation at most
        if node.target in CONVS:
            return True
        previous = node.args[0] if node.args else None
        if not isinstance(previous, Node) or QUANT_ANNOTATION_KEY not in previous.meta:
            return False
        node = previous
    return False


def _modules_of(node: Node) -> list[str]:
    """The names (``model.named_modules()``) of the modules whose forward made ``node``, outermost first."""
    return [path for path, _type in (node.meta.get("nn_module_stack") or {}).values()]


# Ops that only cut a map into the pieces convs read (SK's split input): not reads of the map itself.
SPLITS = (torch.ops.aten.split.Tensor, torch.ops.aten.split_with_sizes.default, torch.ops.aten.chunk.default,
          torch.ops.aten.slice.Tensor)


def _read_by_attention(node: Node, attention_layers: Collection[str]) -> bool:
    """An attention layer reads the value unquantized: no edge of it that is int8 already (the
    observer is then shared with the one annotated here) counts, nor the graph's output, nor a split
    into the inputs of convs."""
    for user in node.users:
        annotation = user.meta.get(QUANT_ANNOTATION_KEY)
        if (annotation is not None and node in (annotation.input_qspec_map or {})) or user.target in SPLITS:
            continue
        if user.op != "output" and any(path in attention_layers for path in _modules_of(user)):
            return True
    return False


def annotate_attention_inputs(graph: GraphModule, spec: object, attention_layers: Collection[str],
                              attention_mlps: Collection[str]) -> int:
    """Give ``spec`` (the activations' quantization) to the feature maps that quantized convs write and
    attention layers read in float. Returns how many it annotated.

    Args:
        graph: the exported model, annotated by the x86 quantizer.
        spec: the activations' quantization spec.
        attention_layers: the attention layers' module names.
        attention_mlps: the attention MLPs' module names: when they are quantized
            (``keep_float="none"``), their output is the attention's logits, not a map it reads.
    """
    count = 0
    for node in graph.graph.nodes:
        annotation = node.meta.get(QUANT_ANNOTATION_KEY)
        if (annotation is None or not annotation._is_output_of_quantized_pattern
                or annotation.output_qspec is not None):
            continue
        made_by = _modules_of(node)
        if (_is_feature_map(node) and _ends_conv_pattern(node) and _read_by_attention(node, attention_layers)
                and not (made_by and made_by[-1] in attention_mlps)):
            annotation.output_qspec = spec
            count += 1
    return count


class AttentionInputQuantizer(X86InductorQuantizer):
    """The x86 inductor quantizer, whose quantized convs also hand the attention their output in int8."""

    def __init__(self, attention_layers: Collection[str], attention_mlps: Collection[str]) -> None:
        super().__init__()
        self.attention_layers, self.attention_mlps = set(attention_layers), set(attention_mlps)
        self.annotated_outputs = 0

    def annotate(self, model: GraphModule) -> GraphModule:
        super().annotate(model)
        self.annotated_outputs = annotate_attention_inputs(model, self.global_config.output_activation,
                                                           self.attention_layers, self.attention_mlps)
        return model

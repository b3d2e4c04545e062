"""``quantize``: one entry point, and the engines that make the int8 model, one table of small records.

``inductor`` is PyTorch's own PT2E flow (:mod:`.pt2e`), run by oneDNN's int8 kernels through
inductor, saved as a ``.pt2``. ``openvino`` is NNCF's post-training quantization of the deployed
network, run by OpenVINO's CPU plugin (:mod:`splitattn.deploy.openvino_model`), saved as an IR
(``.xml``): on the CPUs measured it is the faster of the two (``docs/benchmarks.md``), and it needs
``pip install 'splitattn[openvino]'``. Both take the same calibration batches, leave the same
layers in float, and are checked the same way (``splitattn quantize --val``; agreement on save).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..deploy import deploy
from ..deploy.openvino_model import OPENVINO_ATTENTION_MLP, quantize_openvino
from ..errors import SplitattnError, one_of
from .pt2e import check_quantizable, float_layers_of, quantize_pt2e

ATTENTION_INPUT_CHOICES = ("int8", "float")



@dataclass(frozen=True)
class QuantizeRequest:
    """What :func:`quantize` hands an engine once it has checked the arguments: one record, so that
    a new option is a new field that the engines which do not take it never see.

    Args:
        model: the float32 CPU model (the engine copies it before changing anything).
        batches: the calibration batches, float32 (N, C, H, W), at least one.
        float_layers: module names (``model.named_modules()``) to leave in float.
        compile: run compiled (False: the uncompiled reference graph, where the engine has one).
        batch_size: the batch size to compile for, where the engine compiles one.
        int8_attention_inputs: the convs feeding an attention write int8 (False: float32), where
            the engine leaves that choice to us.
    """

    model: nn.Module
    batches: list[torch.Tensor]
    float_layers: list[str]
    compile: bool
    batch_size: int
    int8_attention_inputs: bool


# a checked request -> the int8 model
Quantizer = Callable[[QuantizeRequest], nn.Module]


@dataclass(frozen=True)
class QuantizeEngine:
    """One way of making an int8 model.

    Args:
        name: what ``engine=`` takes.
        run: the :data:`Quantizer`: a :class:`QuantizeRequest` in, the int8 model out.
        suffix: the file ``save_quantized`` writes it to.
        label: what the model saved is, in a sentence (``"archive"``, ``"OpenVINO IR"``).
        x86_only: it quantizes only on x86 processors.
        compiles_at_batch: it compiles for one batch size (``batch_size``); others are padded or split.
        reference_graph: ``compile=False`` runs an uncompiled reference graph (the numerical check).
        aot: ``save_quantized(aot=True)`` can write it as an ahead-of-time compiled package.
        checked_on_save: ``save_quantized`` checks it against the float model (it is compiled already).
        float_attention_inputs: ``attention_inputs="float"`` is ours to choose; without it the engine
            decides where activations are quantized (NNCF's own rules put them in int8).
    """

    name: str
    run: Quantizer
    suffix: str
    label: str
    x86_only: bool = True
    compiles_at_batch: bool = False
    reference_graph: bool = False
    aot: bool = False
    checked_on_save: bool = False
    float_attention_inputs: bool = False


def _pt2e(request: QuantizeRequest) -> nn.Module:
    return quantize_pt2e(request.model, request.batches, request.float_layers, request.compile,
                         request.int8_attention_inputs)


def _openvino(request: QuantizeRequest) -> nn.Module:
    # The attention MLPs in the form OpenVINO runs fastest (the gates' as convs), as deploy(compile="openvino")
    # hands them over; NNCF quantizes MatMul as it does convs, so keep_float means the same either way.
    deployed = deploy(copy.deepcopy(request.model).eval(), fuse="none", memory_format="contiguous",
                      attention_mlp=OPENVINO_ATTENTION_MLP)
    return quantize_openvino(deployed, request.batches, request.batch_size, request.float_layers)


QUANTIZE_ENGINES: dict[str, QuantizeEngine] = {e.name: e for e in (
    QuantizeEngine("inductor", _pt2e, ".pt2", "archive", reference_graph=True, aot=True,
                   float_attention_inputs=True),
    QuantizeEngine("openvino", _openvino, ".xml", "OpenVINO IR", x86_only=False, compiles_at_batch=True,
                   checked_on_save=True),
)}


def engines_that(capability: str) -> list[str]:
    """The names of the engines whose record has ``capability`` (a boolean field, ``"aot"``...): what a
    refusal offers instead."""
    return [engine.name for engine in QUANTIZE_ENGINES.values() if getattr(engine, capability)]


def _checked_batches(calibration: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    batches = list(calibration)
    if not batches:
        raise SplitattnError("calibration gave no batches: pass a few batches of preprocessed images")
    for batch in batches:
        if not isinstance(batch, torch.Tensor) or batch.ndim != 4 or batch.dtype != torch.float32:
            raise SplitattnError("calibration batches must be float32 tensors (N, C, H, W), got "
                                 f"{type(batch).__name__} {getattr(batch, 'shape', '')} {getattr(batch, 'dtype', '')}")
    return batches


def quantize(
    model: nn.Module,
    calibration: Iterable[torch.Tensor],
    *,
    keep_float: str | Sequence[str] = "attention",
    compile: bool = True,
    engine: str = "inductor",
    batch_size: int | None = None,
    attention_inputs: str = "int8",
) -> nn.Module:
    """An int8 copy of the float32 CPU ``model``, calibrated on ``calibration``.

    Args:
        model: the float32 model on the CPU; it is copied and left as it was.
        calibration: float32 image batches, preprocessed as for evaluation (a few hundred images
            from the training distribution suffice).
        keep_float: ``"attention"`` (default) leaves the attention MLPs in float, ``"none"``
            quantizes them too, or a list of module names (``model.named_modules()``) to leave in
            float. ``splitattn.quantize.sensitivity`` measures which layers lose most in int8.
        compile: (inductor) run compiled by inductor (oneDNN int8 kernels; the first call
            compiles, which takes a while). False runs the converted graph as is: slow, the
            numerical reference.
        engine: a key of :data:`QUANTIZE_ENGINES`: ``"inductor"`` (a :class:`QuantizedModel`,
            saved as ``.pt2``) or ``"openvino"`` (an :class:`~splitattn.deploy.OpenVinoModel`,
            saved as ``.xml``).
        batch_size: (openvino) the batch size compiled; default: the first calibration batch's.
        attention_inputs: (inductor) ``"int8"`` (default): the convs that feed an attention layer
            write int8, which its pooling and weighting read at a quarter of the bytes; ``"float"``
            keeps those maps in float32, at the speed of before (``sensitivity`` lists each map's
            rounding noise as kind ``"attention input"``).

    Returns:
        The int8 model, taking and returning float32 like ``model``; save it with ``save_quantized``.
    """
    chosen = one_of(QUANTIZE_ENGINES, engine, "engine")
    check_quantizable(model, x86_only=chosen.x86_only)
    batches = _checked_batches(calibration)
    if not compile and not chosen.reference_graph:
        raise SplitattnError(f"compile=False runs an uncompiled reference graph, which engine={engine!r} does not "
                             f"have (it always runs compiled); the inductor engine does")
    if batch_size is not None and batch_size < 1:
        raise SplitattnError(f"batch_size must be >= 1, got {batch_size}")
    if batch_size is not None and not chosen.compiles_at_batch:
        raise SplitattnError(f"batch_size is for engines that compile one batch size "
                             f"({', '.join(engines_that('compiles_at_batch'))}); "
                             f"engine={engine!r} takes any batch")
    one_of(dict.fromkeys(ATTENTION_INPUT_CHOICES), attention_inputs, "attention_inputs")
    if attention_inputs == "float" and not chosen.float_attention_inputs:
        raise SplitattnError(f"attention_inputs='float' is for engines that leave activations' quantization to us "
                             f"({', '.join(engines_that('float_attention_inputs'))}); "
                             f"engine={engine!r} places its quantizers by its own rules")
    return chosen.run(QuantizeRequest(model, batches, float_layers_of(model, keep_float), compile,
                                      batch_size or batches[0].shape[0], attention_inputs == "int8"))

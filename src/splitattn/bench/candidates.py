"""The things a benchmark run compares: our model in its modes, and the references.

Each candidate is a zero-argument callable doing one unit of work (a forward pass, or a whole
training step) on a fixed batch, so the timer treats them all alike. Our inference variants are the
table :data:`OURS` (name -> builder); the engines' (``onnx``, ``openvino+int8`` ...) come from the
export formats' table through :mod:`.engines`, so neither is picked by an if/elif over names.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..deploy import deploy
from ..errors import SplitattnError
from ..factory import create_model
from .compile_check import checked_compiled
from .config import DTYPES, BenchConfig, Candidate, calibration, float32_cpu_only, int8_aot_package
from .engine_setup import onnx_setup
from .engines import engine_candidate, engine_variants
from .references import reference_builders
from .timm_engines import TIMM_ENGINES, timm_engine_candidate

TRAINING_VARIANTS = ("train", "train+channels_last", "train+ckpt_stage", "train+ckpt_block")

__all__ = ["DTYPES", "OURS", "TRAINING_VARIANTS", "BenchConfig", "Candidate", "inference_candidates",
           "inference_variants", "training_candidates"]


def _prepare(model: nn.Module, config: BenchConfig, memory_format: torch.memory_format | None = None) -> nn.Module:
    return model.to(config.device, config.torch_dtype).to(memory_format=memory_format or config.memory_format)


def _forward(model: nn.Module, x: torch.Tensor, grad_off: Callable = torch.inference_mode) -> Callable[[], object]:
    """One forward on ``x``. Compiled candidates pass ``torch.no_grad``: dynamo guards on the input's
    dispatch keys, which differ under ``inference_mode``, so the graph deploy compiled (and checked)
    under ``no_grad`` would be compiled a second time on the first ``inference_mode`` call."""

    def run() -> object:
        with grad_off():
            return model(x)

    return run


OursBuilder = Callable[[str, nn.Module, BenchConfig, torch.Tensor], Candidate]


def _eager(variant: str, model: nn.Module, config: BenchConfig, x: torch.Tensor) -> Candidate:
    ours = _prepare(create_model(config.model).eval(), config)
    ours.load_state_dict(model.state_dict())
    return Candidate("ours eager", _forward(ours, x), ours)


# Compilers whose candidates hold dynamo graphs: their build and first call must compile one static graph.
DYNAMO_COMPILERS = ("inductor",)
_DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
ONE_GRAPH = "one static graph at build and first call, none after (checked); called under torch.no_grad"


def _deployed(compile_mode: str | None, dtype: torch.dtype | None, variant: str, model: nn.Module,
              config: BenchConfig, x: torch.Tensor) -> Candidate:
    """Our deployed network, compiled by ``compile_mode``; ``dtype`` (bfloat16) casts it after folding,
    from the float32 CPU model, as a user would call ``deploy(..., dtype=torch.bfloat16)``."""
    if dtype is not None:
        float32_cpu_only(config, variant)
    base = _prepare(create_model(config.model).eval(), config)
    base.load_state_dict(model.state_dict())
    label, built = f"ours {variant}", []

    def build() -> Callable[[], object]:  # deploy runs the compiled model once in its output check
        built.append(deploy(base, batch_size=config.batch_size, example_input=x, compile=compile_mode,
                            dtype=dtype))
        return _forward(built[0], x, torch.no_grad if checked else torch.inference_mode)

    checked = compile_mode in DYNAMO_COMPILERS
    run = checked_compiled(build, label) if checked else build()
    observable = compile_mode is None or torch.device(config.device).type == "cuda"
    dtype_arg = "" if dtype is None else f", dtype={dtype}"
    setup = {"model": f"deploy(batch_size={config.batch_size}, example_input=x, compile={compile_mode!r}{dtype_arg})",
             "threads": torch.get_num_threads(), **({"graphs": ONE_GRAPH} if checked else {})}
    return Candidate(label, run, built[0], observable, precision=_DTYPE_NAMES.get(dtype, "float32"), setup=setup)


# What OpenVINO's answer for the float ops means in the benchmark's precision names.
_FLOAT_OPS = {"f32": "float32", "bf16": "bfloat16"}


def _openvino_candidate(label: str, built: nn.Module, x: torch.Tensor, how: str) -> Candidate:
    """A candidate of ours that OpenVINO runs (:class:`~splitattn.deploy.OpenVinoModel`), its setup recorded."""
    precision = "int8" if built.precision == "int8" else _FLOAT_OPS.get(built.float_ops_ran_at, built.float_ops_ran_at)
    setup = {"model": how, "input": f"static {built.info['input_shape']}",
             **{key: str(value) for key, value in built.setup.items()}, "float ops ran at": built.float_ops_ran_at}
    return Candidate(label, _forward(built, x), built, observable_memory=False, precision=precision, setup=setup)


def _deployed_openvino(dtype: torch.dtype, variant: str, model: nn.Module, config: BenchConfig,
                       x: torch.Tensor) -> Candidate:
    float32_cpu_only(config, variant)
    deployed = deploy(model, batch_size=config.batch_size, example_input=x, compile="openvino", dtype=dtype)
    how = f"deploy(batch_size={config.batch_size}, example_input=x, compile='openvino', dtype={dtype})"
    return _openvino_candidate(f"ours {variant}", deployed, x, how)


def _quantized_openvino(variant: str, model: nn.Module, config: BenchConfig, x: torch.Tensor) -> Candidate:
    float32_cpu_only(config, variant)
    from ..quantize import quantize

    quantized = quantize(model, calibration(config), engine="openvino", batch_size=config.batch_size)
    how = (f"quantize(model, {len(calibration(config))} random batches, engine='openvino', "
           f"batch_size={config.batch_size}): NNCF, attention MLPs in float")
    return _openvino_candidate(f"ours {variant}", quantized, x, how)


def _deployed_onnxruntime(variant: str, model: nn.Module, config: BenchConfig, x: torch.Tensor) -> Candidate:
    """Our deployed network run by onnxruntime (:class:`~splitattn.deploy.OnnxRuntimeModel`), its setup recorded."""
    float32_cpu_only(config, variant)
    deployed = deploy(model, batch_size=config.batch_size, example_input=x, compile="onnxruntime")
    setup = {"model": f"deploy(batch_size={config.batch_size}, example_input=x, compile='onnxruntime')",
             **onnx_setup(deployed.threads, f"static {deployed.info['input_shape']} (exported at that shape)")}
    return Candidate(f"ours {variant}", _forward(deployed, x), deployed, observable_memory=False, precision="float32",
                     setup=setup)


def _quantized(variant: str, model: nn.Module, config: BenchConfig, x: torch.Tensor) -> Candidate:
    float32_cpu_only(config, variant)
    from ..quantize import quantize

    quantized = quantize(model, calibration(config))  # compiles on its first call
    run = checked_compiled(lambda: _forward(quantized, x, torch.no_grad), "ours int8")
    setup = {"model": f"quantize(model, {len(calibration(config))} random batches), compiled by inductor; "
                      f"{quantized.int8_attention_inputs} attention inputs in int8",
             "threads": torch.get_num_threads(), "graphs": ONE_GRAPH}
    return Candidate("ours int8", run, quantized, observable_memory=False, precision="int8", setup=setup)


def _quantized_aot(variant: str, model: nn.Module, config: BenchConfig, x: torch.Tensor) -> Candidate:
    """The int8 model as ``save_quantized(aot=True)`` writes it: AOTInductor at the batch's static shape,
    which calls its kernels from C++ (no dynamo guard, no Python between kernels)."""
    float32_cpu_only(config, variant)
    package = int8_aot_package(model, config, x)
    setup = {"model": f"quantize(model, {len(calibration(config))} random batches), compiled ahead of time "
                      f"(save_quantized aot=True) at static {list(x.shape)}", "threads": torch.get_num_threads()}
    return Candidate(f"ours {variant}", _forward(package, x), package, observable_memory=False, precision="int8",
                     setup=setup)


# Ours in each mode and precision; the engines people deploy with follow, from the export table.
OURS: dict[str, OursBuilder] = {
    "eager": _eager,
    "deploy": partial(_deployed, None, None),
    "deploy+jit": partial(_deployed, "jit", None),
    "deploy+compile": partial(_deployed, "inductor", None),
    "deploy+aot": partial(_deployed, "aot", None),  # AOTInductor at the batch's static shape: minutes to compile
    "deploy+bf16": partial(_deployed, None, torch.bfloat16),
    "deploy+compile+bf16": partial(_deployed, "inductor", torch.bfloat16),
    "deploy+aot+bf16": partial(_deployed, "aot", torch.bfloat16),  # no Python launch: nearest OpenVINO at batch 1
    "int8": _quantized,
    "int8+aot": _quantized_aot,  # minutes to compile, as deploy+aot
    # Our deployed network handed to an engine (deploy's backends, where they win), checked as deploy checks
    "deploy+openvino": partial(_deployed_openvino, torch.float32),
    "deploy+openvino+bf16": partial(_deployed_openvino, torch.bfloat16),
    "int8+openvino": _quantized_openvino,
    "deploy+onnxruntime": _deployed_onnxruntime,
}


def _scratch_folder() -> Path:
    """A folder for the engines' files, removed when the process ends (the engines have read them by
    then, or map them, which Linux keeps valid after the name is gone)."""
    folder = Path(tempfile.mkdtemp(prefix="splitattn-bench-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def inference_variants() -> tuple[str, ...]:
    """Every inference variant: ours (:data:`OURS`), then each export format in each of its
    benchmark precisions (``onnx``, ``onnx+int8``, ...), read from the export table as it is now,
    then timm's model exported plainly (:data:`.timm_engines.TIMM_ENGINES`)."""
    return (*OURS, *engine_variants(), *TIMM_ENGINES)


def inference_candidates(
    config: BenchConfig, variants: tuple[str, ...], references: bool = True, workdir: Path | None = None
) -> list[Candidate]:
    """Our model in each requested inference variant, then each installed reference (eval mode).

    Args:
        config: model, batch, resolution, dtype, layout and device.
        variants: some of :func:`inference_variants`.
        references: also time timm and the official package where installed.
        workdir: where the engine candidates' files are written (default: a new temporary folder).
    """
    engines = engine_variants()
    unknown = set(variants) - set(inference_variants())
    if unknown:
        raise SplitattnError(f"unknown inference variants {sorted(unknown)}; expected some of {inference_variants()}")
    x = config.example()
    model = create_model(config.model).eval()
    candidates = []
    for variant in variants:
        if variant in OURS:
            candidates.append(OURS[variant](variant, model, config, x))
            continue
        workdir = workdir or _scratch_folder()
        if variant in TIMM_ENGINES:
            candidates.append(timm_engine_candidate(variant, model.state_dict(), config, x, workdir))
        else:
            candidates.append(engine_candidate(variant, *engines[variant], model, config, x, workdir))
    if references:
        candidates += _reference_candidates(config, model.state_dict(), train=False, x=x)
    return candidates


def _reference_candidates(config: BenchConfig, state: dict, train: bool, x: torch.Tensor,
                          target: torch.Tensor | None = None) -> list[Candidate]:
    """Each installed reference as configured, plus timm in the other memory layout.

    timm in both layouts lets the table say how we compare with the faster of the two, not only
    with timm's default.
    """
    builders = reference_builders(config.model, state_dict=state)
    layouts = [(label, build, None) for label, build in builders.items()]
    if "timm" in builders:
        other = torch.contiguous_format if config.channels_last else torch.channels_last
        suffix = "contiguous" if config.channels_last else "channels_last"
        layouts.append((f"timm {suffix}", builders["timm"], other))
    candidates = []
    for label, build, layout in layouts:
        ref = _prepare(build().train(train), config, layout)
        inputs = x.contiguous(memory_format=layout) if layout is not None else x
        fn = _train_step(ref, inputs, target) if train else _forward(ref, inputs)
        layout_name = "channels-last" if (layout or config.memory_format) == torch.channels_last else "NCHW"
        setup = {"model": f"{label.split()[0]} eager, {layout_name}, our weights", "threads": torch.get_num_threads()}
        candidates.append(Candidate(label, fn, ref, setup=setup))
    return candidates


def _train_step(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Callable[[], object]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> object:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).float(), target)
        loss.backward()
        optimizer.step()
        return loss

    return step


def training_candidates(config: BenchConfig, variants: tuple[str, ...], references: bool = True) -> list[Candidate]:
    """One SGD step (forward, cross-entropy, backward, update) of ours per variant and of each reference."""
    unknown = set(variants) - set(TRAINING_VARIANTS)
    if unknown:
        raise SplitattnError(f"unknown training variants {sorted(unknown)}; expected some of {TRAINING_VARIANTS}")
    if config.batch_size < 2:
        raise SplitattnError(
            f"training needs batch_size >= 2 (got {config.batch_size}): the attention BatchNorms see one "
            "value per channel per image and cannot normalise a batch of one"
        )
    x = config.example()
    target = torch.randint(0, 1000, (config.batch_size,), generator=torch.Generator().manual_seed(0))
    target = target.to(config.device)
    state = create_model(config.model).state_dict()
    candidates = []
    for variant in variants:
        layout = torch.channels_last if variant == "train+channels_last" else None
        model = create_model(config.model)
        model.load_state_dict(state)
        model = _prepare(model.train(), config, layout)
        if variant.startswith("train+ckpt"):
            model.set_grad_checkpointing(True, granularity=variant.removeprefix("train+ckpt_"))
        inputs = x.contiguous(memory_format=layout) if layout is not None else x
        candidates.append(Candidate(f"ours {variant}", _train_step(model, inputs, target), model))
    if references:
        candidates += _reference_candidates(config, state, train=True, x=x, target=target)
    return candidates

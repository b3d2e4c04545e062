"""Training configuration: the fields every task shares, recipe presets, YAML files and ``key=value`` overrides.

``RunConfig`` holds the settings every training task has (batch size, optimiser, device, seed,
output, logging, checkpoints, resume); classification's ``TrainConfig`` and the dense tasks'
``DenseRecipe`` extend it. ``build_config`` builds ``TrainConfig`` and the detection and segmentation configs
alike (defaults, YAML file, overrides, with the same type checks and errors), and ``save_config``
writes any of them as a run's ``config.yaml``. Every run saves the config it actually used, so a
result can always be reproduced.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from ..data.transforms import chosen_policy
from ..errors import ConfigError
from ..models.registry import input_cfg


@dataclass(kw_only=True)
class RunConfig:
    """The settings every training task has (classification, detection, segmentation), with one meaning.

    The task configs extend it (``TrainConfig`` here, ``dense.recipe.DenseRecipe``) and may change
    a default; the shared loop (``training.loop``) and the resume rule (``training.resume``) read
    these fields whichever task runs.
    """

    batch_size: int = 4
    optimizer: str = "sgd"  # "sgd" (with momentum) or "adamw" (training.optim.OPTIMIZERS)
    weight_decay: float = 1e-4
    device: str = "auto"
    amp: bool = False  # mixed precision: float16 on CUDA, bfloat16 on CPU
    seed: int = 0
    deterministic: bool = False  # deterministic algorithms (GPU), for bit-exact reruns
    workers: int = 0  # data loading processes; 0 loads in the training process
    output: str | None = None
    log: str = "jsonl"  # trackers besides metrics.jsonl: tensorboard, wandb, mlflow, or several: "tensorboard,wandb"
    log_every: int = 20  # a line with the mean loss of the last N steps every N steps (0: never)
    progress: bool = True  # a progress bar on stderr
    checkpoint_every: int = 100  # save OUTPUT/last.pth every this many steps (0: at the natural points only)
    resume: bool = False  # continue from OUTPUT/last.pth

    # Settings a resumed run may change (training.resume); any other difference from the checkpoint's config
    # is refused. A task adds where its data live.
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        "device", "amp", "deterministic", "workers", "output", "log_every", "log", "progress", "checkpoint_every",
        "resume")

    @classmethod
    def resume_view(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A saved or current config's values as the run used them (a task fills in derived defaults)."""
        return values


@dataclass(kw_only=True)
class TrainConfig(RunConfig):
    """Everything a run depends on. Defaults train the built-in digits set in a few minutes on a CPU."""

    # data
    # "digits" (built in), a directory with train/ and val/ class folders, WebDataset shards (a directory
    # with _info.json, 'shards/train-{000000..000127}.tar', pipe: commands) or hf:NAME (splitattn.data.sources)
    data: str = "digits"
    train_dir: str | None = None  # override the train/ sub-directory
    val_dir: str | None = None
    val_data: str | None = None  # validation source of any kind; None: data's own validation split
    train_split: str | None = None  # split of a shard set or Hugging Face dataset; None: "train"
    val_split: str | None = None  # None: "validation" or "val"
    image_column: str | None = None  # Hugging Face columns; None: the Image / ClassLabel feature
    label_column: str | None = None
    hf_streaming: bool = False  # stream a Hugging Face dataset instead of downloading it
    hf_options: dict[str, Any] = field(default_factory=dict)  # datasets.load_dataset keywords: hf_options.data_dir=D
    shard_info: str | None = None  # shards' _info.json when it is not beside them (pipe: shards)
    num_classes: int | None = None  # for sources that do not name their classes
    shuffle_buffer: int = 1000  # samples a stream mixes at a time
    train_num_samples: int | None = None  # epoch length of a streamed dataset that does not declare it
    image_size: int = 32
    crop_pct: float | None = 1.0  # eval resize = image_size / crop_pct; None: the model's default
    interpolation: str = "bilinear"
    # model
    model: str = "resnest14d"
    pretrained: str | None = None  # path/URL, or "published" for the registered ImageNet weights
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    drop_block_rate: float = 0.0  # ramped linearly from 0 over training
    zero_init_last: bool = True
    # Attention fields changed from the zoo entry's, the others kept: attn.radix=4 on the command line,
    # or attn: {radix: 4} in YAML. A field the entry's attention kind does not have is refused.
    attn: dict[str, Any] = field(default_factory=dict)
    # optimisation
    epochs: int = 8
    batch_size: int = 64  # per process
    lr: float | None = None  # None: base_lr * global batch / 256
    base_lr: float = 0.1
    momentum: float = 0.9  # SGD's (optimizer: "sgd", the paper's, or "adamw", which usually wants a lower lr)
    no_decay_bn_bias: bool = True
    warmup_epochs: float = 1.0
    min_lr: float = 0.0
    label_smoothing: float = 0.1
    mixup: float = 0.0
    cutmix: float = 0.0
    auto_augment: bool = False  # at most one of auto_augment, rand_augment, trivial_augment
    rand_augment: bool = False
    trivial_augment: bool = False  # TrivialAugment (wide), as torchvision's recipes use
    random_erasing: float = 0.0  # probability of erasing a rectangle of each image, after normalisation
    random_resized_crop: bool = False  # else pad-and-crop, which suits small images
    hflip: bool = False
    ema: bool = False
    ema_decay: float = 0.9998
    # run (and RunConfig's: device, amp, seed, deterministic, log, progress, resume)
    output: str = "runs/train"
    log_every: int = 0  # step lines off: each epoch has its own line
    checkpoint_every: int = 0  # 0: last.pth after every epoch (and on a signal)
    grad_checkpointing: bool = False
    channels_last: bool = False
    sync_bn: bool = False
    max_steps_per_epoch: int | None = None  # for smoke tests

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *RunConfig.RESUME_MAY_CHANGE, "data", "train_dir", "val_dir", "val_data", "shard_info", "hf_options",
        "pretrained")

    def __post_init__(self) -> None:
        # Refused when the config is built (command line, YAML, Python), before any data are read.
        chosen_policy(self.random_erasing, auto_augment=self.auto_augment, rand_augment=self.rand_augment,
                      trivial_augment=self.trivial_augment)

    def scaled_lr(self, world_size: int) -> float:
        """The paper's linear scaling rule: lr = 0.1 x global batch / 256, unless set explicitly."""
        return self.lr if self.lr is not None else self.base_lr * self.batch_size * world_size / 256

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def imagenet_recipe(model: str) -> dict[str, Any]:
    """The ResNeSt paper's ImageNet recipe for ``model`` (Section 5 / Appendix of the paper).

    Crop size and interpolation come from the model's pretrained config, which records what its
    published weights were trained with (for ResNeSt: 224 / 256 / 320 / 416 px for depth 50 / 101 /
    200 / 269); the paper adds DropBlock for the two large crops.
    """
    cfg = input_cfg(model)
    size = cfg.input_size[-1]
    return dict(
        model=model,
        image_size=size,
        epochs=270,
        batch_size=64,
        base_lr=0.1,
        lr=None,
        momentum=0.9,
        weight_decay=1e-4,
        no_decay_bn_bias=True,
        warmup_epochs=5,
        label_smoothing=0.1,
        mixup=0.2,
        auto_augment=True,
        random_resized_crop=True,
        hflip=True,
        drop_rate=0.2,
        drop_block_rate=0.1 if size >= 320 else 0.0,
        zero_init_last=True,
        interpolation=cfg.interpolation,
        crop_pct=None,
        workers=8,
    )


PRESETS = {"digits": lambda model: {}, "imagenet": imagenet_recipe}

ConfigT = TypeVar("ConfigT")


def _field_kind(annotation: Any) -> tuple[Any, bool]:
    """(base type, whether None is allowed) of a resolved field annotation: ``int | None`` gives
    ``(int, True)``, ``dict[str, Any]`` gives ``(dict, False)``."""
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = typing.get_args(annotation) if is_union else (annotation,)
    base = next((member for member in members if member is not type(None)), type(None))
    return typing.get_origin(base) or base, type(None) in members


def _coerce(name: str, raw: Any, annotation: Any) -> Any:
    """A value for the field ``name``: a command-line string is read as YAML, then checked against
    the field's annotated type (text fields keep the text as typed)."""
    kind, optional = _field_kind(annotation)
    value = raw
    if isinstance(raw, str):
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            if kind is not str:
                raise ConfigError(f"config {name}: cannot read {raw!r} ({str(error).splitlines()[0]})") from None
        if kind is str and value is not None:
            return raw  # "0.1", "true", "2024": text for a text field, not a number
    if value is None:
        if not optional:
            raise ConfigError(f"config {name} cannot be empty (null)")
        return None
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config {name} expects true/false, got {raw!r}")
        return value
    if kind in (int, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"config {name} expects a number, got {raw!r}")
        if kind is float:
            return float(value)
        if not float(value).is_integer():
            raise ConfigError(f"config {name} expects a whole number, got {raw!r}")
        return int(value)
    if kind is str:
        if isinstance(value, (bool, list, dict)):
            raise ConfigError(f"config {name} expects text, got {raw!r}")
        return str(value)
    if kind is dict and not isinstance(value, dict):
        raise ConfigError(f"config {name} expects a mapping of key: value, got {raw!r}")
    return value


def _default(config_field: dataclasses.Field) -> Any:
    if config_field.default_factory is not dataclasses.MISSING:
        return config_field.default_factory()
    return {} if config_field.default is dataclasses.MISSING or config_field.default is None else config_field.default


def _unknown(key: str, origin: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key.replace("-", "_"), known, n=3, cutoff=0.6)
    hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
            else f"known options: {', '.join(sorted(known))}")
    return f"unknown config option {key!r} (from {origin}); {hint}"


def _read_yaml(config_file: str | Path) -> dict[str, Any]:
    path = Path(config_file)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of option: value")
    return loaded


def build_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    config_class: type[ConfigT] = TrainConfig,
    defaults: Mapping[str, Any] | None = None,
) -> ConfigT:
    """A ``config_class`` instance (``TrainConfig``, ``DetectionConfig``, ``SegmentationConfig``...)
    from layers, later ones winning: the class's defaults, then ``defaults`` (a command's own, such
    as its run directory), then the preset (``TrainConfig`` only), then the YAML file, then
    ``overrides`` (the command line: ``key=value`` strings are read as YAML).

    Every value is checked against its field's type; an unknown option is refused with the
    closest known names, a required field (one without a default) that no layer gives is named.
    """
    fields = {f.name: f for f in dataclasses.fields(config_class) if f.init}
    hints = typing.get_type_hints(config_class)  # the annotations as types, not the strings they are written as
    overrides = dict(overrides or {})
    loaded = _read_yaml(config_file) if config_file is not None else None
    layers: list[tuple[str, Mapping[str, Any]]] = [("defaults", defaults or {})]
    if preset is not None:
        presets = PRESETS if issubclass(config_class, TrainConfig) else {}
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r}; expected one of {sorted(presets)}")
        model = overrides.get("model", (loaded or {}).get("model", TrainConfig.model))
        layers.append((f"preset {preset}", presets[preset](model)))
    if loaded is not None:
        layers.append((str(config_file), loaded))
    layers.append(("command line", overrides))
    values: dict[str, Any] = {}
    for origin, layer in layers:
        for key, value in layer.items():
            name, _, member = str(key).replace("-", "_").partition(".")
            if name not in fields:
                raise ConfigError(_unknown(str(key), origin, list(fields)))
            if member:  # attn.radix=4: one entry of a mapping option, the others kept
                if _field_kind(hints[name])[0] is not dict:
                    raise ConfigError(f"config {name} is not a mapping, so {key!r} (from {origin}) has no meaning; "
                                      f"give {name}=VALUE")
                try:
                    entry = yaml.safe_load(value) if isinstance(value, str) else value
                except yaml.YAMLError as error:
                    raise ConfigError(f"config {key}: cannot read {value!r} ({str(error).splitlines()[0]})") from None
                values[name] = {**values.get(name, _default(fields[name])), member: entry}
            else:
                values[name] = _coerce(name, value, hints[name])
    missing = [name for name, f in fields.items() if name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"missing required config option{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return config_class(**values)


def save_config(config: Any, path: Path) -> None:
    """A run's resolved config as YAML (``config.yaml``), which ``build_config`` reads back."""
    path.write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))


def describe(config: Any) -> str:
    return json.dumps(dataclasses.asdict(config), indent=2)

"""Classification training: the ResNeSt recipe on one CPU or many GPUs, resumable exactly after a crash.

The ``Trainer`` is classification's :class:`~splitattn.training.loop.Task`: it builds the data,
the model, the optimiser and the schedule, and gives the shared loop (``training.loop.fit``) the
loss of a batch (mixup, label smoothing, the DropBlock ramp), the EMA update and what ends an
epoch (evaluation, ``best.pth``, metrics, the trackers). The step, AMP, exact resume, signals,
divergence and checkpoints are the loop's, as for detection and segmentation; an epoch is a pass
of ``steps_per_epoch`` batches, reseeded from (seed, epoch, rank).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from ..data import batch_mix, collate_skipping, eval_transform, prepare_digits, train_transform
from ..data.skips import SKIPPED_FILE, SkippedSample, SkipReport, describe_skips
from ..data.source_options import SourceOptions
from ..data.sources import DataSource, open_source
from ..errors import SplitattnError
from ..factory import create_model
from ..interface import option
from ..layers import resolve_attention, set_drop_block_progress
from ..models.registry import get_model_entry, input_cfg
from .checkpoint import BEST, LAST, remove_partial_writes, save_checkpoint
from .config import TrainConfig, describe, save_config
from .epoch_tracking import log_epoch, prediction_preview
from .evaluate import evaluate
from .loop import Checkpointing, LoopPlan, Optimisation, Task, TrainingDiverged, fit, tracker_hook
from .metrics import append_jsonl, plot_curves, read_jsonl, topk_correct
from .optim import build_optimizer, build_scheduler, check_optimizer
from .resume import resume_state
from .runtime import (
    Runtime,
    StopSignals,
    all_reduce_sum,
    barrier,
    gather_lists,
    grad_scaler,
    ignore_stop_signals,
    seed_everything,
    start,
    stop,
)
from .trackers import FAILED, FINISHED, STOPPED, RunTrackers, check_log, open_trackers

__all__ = ["Trainer", "TrainingDiverged", "check_attention", "train"]  # TrainingDiverged: the loop's


def check_attention(model_name: str, attn: dict[str, Any]) -> None:
    """A ValueError naming the option when ``attn`` changes a field that ``model_name``'s attention lacks."""
    try:
        resolve_attention(attn or None, get_model_entry(model_name).attention)
    except TypeError as error:
        raise SplitattnError(f"attn ({model_name}'s attention fields to change): {error}") from None


class Trainer(Task):
    """Classification training as a task of the shared loop: ``Trainer(config, runtime).fit()``."""

    def __init__(self, config: TrainConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        self.output = Path(config.output)
        self.stop_signals = StopSignals(self.log)
        self.tracker_kinds = check_log(config.log, preflight=runtime.is_main)  # refused before any work
        self.trackers: RunTrackers | None = None
        check_optimizer(config.optimizer)  # refused before the data are read, as is a wrong attention field
        check_attention(config.model, config.attn)
        seed_everything(config.seed + runtime.rank, config.deterministic)
        self._build_data()
        self._build_model()
        self.optimizer = build_optimizer(self.model, config.optimizer, lr=config.scaled_lr(runtime.world_size),
                                         weight_decay=config.weight_decay, momentum=config.momentum,
                                         no_decay_bn_bias=config.no_decay_bn_bias)
        self.scheduler = build_scheduler(self.optimizer, config.epochs, self.steps_per_epoch,
                                         config.warmup_epochs, config.min_lr)
        self.optimisation = Optimisation(self.optimizer, self.scheduler, grad_scaler(runtime.device, config.amp))
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.mix = batch_mix(len(self.class_names), config.mixup, config.cutmix)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.best_top1, self.state = -1.0, None
        if config.resume:
            self._resume()
        self.start_step = self.state["step"] if self.state is not None else 0
        self.epoch_stats = dict.fromkeys(("loss", "correct", "seen", "skipped"), 0.0)
        self.epoch_started = time.perf_counter()
        self.record: dict[str, Any] = {}

    # ----------------------------------------------------------------------------------- set-up
    def log(self, message: str) -> None:
        if self.runtime.is_main:
            print(message, flush=True)

    def _build_data(self) -> None:
        """Open the training and validation sources (any kind of :data:`splitattn.data.SOURCE_KINDS`),
        check them, and build their loaders: an indexed source through ``DistributedSampler``, a
        stream through its own share-out over ranks and workers, each rank taking the same steps."""
        config = self.config
        if "digits" in (config.data, config.val_data):
            if self.runtime.local_rank == 0:  # one writer per machine; the others wait, then reuse it
                prepare_digits()
            barrier(self.runtime)
        train_source, val_source = self._open_sources()
        cfg = input_cfg(config.model)
        self.mean, self.std = cfg.mean, cfg.std
        crop_pct = config.crop_pct or cfg.crop_pct
        train_tf = train_transform(
            config.image_size, cfg.mean, cfg.std, config.interpolation, config.random_resized_crop, config.hflip,
            auto_augment=config.auto_augment, rand_augment=config.rand_augment,
            trivial_augment=config.trivial_augment, random_erasing=config.random_erasing)
        val_tf = eval_transform(config.image_size, cfg.mean, cfg.std, crop_pct, config.interpolation)
        self.class_names = train_source.class_names
        train_set = train_source.dataset(train_tf, self.class_names, training=True, seed=config.seed)
        val_set = val_source.dataset(val_tf, self.class_names, training=False, seed=config.seed)
        self.skip_report = SkipReport()
        self.epoch_skips: dict[str, list[SkippedSample]] = {"train": [], "val": []}  # this epoch's, this rank's
        for name, source in (("train", train_source), ("val", val_source)):
            if source.skipped_files:  # zero-byte files that a folder's scan left out
                self.skip_report.add(name, source.skipped_files)
                self.log(f"{name}: skipped {len(source.skipped_files)} zero-byte image file(s) in {source.where}: "
                         f"{describe_skips(list(source.skipped_files))}")
        world, rank = self.runtime.world_size, self.runtime.rank
        self.loader_generator = torch.Generator()
        loading = dict(num_workers=config.workers, collate_fn=collate_skipping, worker_init_fn=ignore_stop_signals,
                       generator=self.loader_generator, pin_memory=self.runtime.device.type == "cuda")
        if train_source.indexed:
            self.reorder = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
            self.train_loader = DataLoader(train_set, config.batch_size, sampler=self.reorder, drop_last=True,
                                           **loading)
            steps = len(self.train_loader)
        else:  # a stream orders and shares itself out from (seed, epoch)
            train_set.configure(world, rank, config.workers)
            self.reorder = train_set
            self.train_loader = DataLoader(train_set, config.batch_size, drop_last=True, **loading)
            steps = train_set.steps(config.batch_size)
        if val_source.indexed:
            val_set = Subset(val_set, range(rank, len(val_set), world))  # no padding: every image counted once
        else:
            val_set.configure(world, rank, config.workers)
        self.val_loader = DataLoader(val_set, config.batch_size, shuffle=False, num_workers=config.workers,
                                     collate_fn=collate_skipping)
        if steps == 0:
            raise SplitattnError(f"batch size {config.batch_size} x {world} process(es) is larger than the training "
                                 f"set ({train_source.describe()}): lower {option('batch_size')}")
        self.steps_per_epoch = min(steps, config.max_steps_per_epoch or steps)
        self.log(f"data: train {train_source.describe()} / val {val_source.describe()}, "
                 f"{len(self.class_names)} classes, {config.image_size} px crops")
        if not train_source.indexed:
            self.log(f"train: {train_set.plan(config.batch_size)}")
        if config.data != "digits" and config.image_size == TrainConfig.image_size:
            self.log(f"note: {config.image_size} px is the default, sized for the built-in digits; photos usually "
                     f"want {option('image_size', '224')} (or the size `splitattn zoo` lists for the model)")

    def _open_sources(self) -> tuple[DataSource, DataSource]:
        """The training source and its validation source (``val_data``, or the data's own split)."""
        config = self.config
        options = SourceOptions(image_column=config.image_column, label_column=config.label_column,
                                streaming=config.hf_streaming, hf_options=config.hf_options,
                                shard_info=config.shard_info, num_classes=config.num_classes,
                                shuffle_buffer=config.shuffle_buffer)
        train = open_source(config.train_dir or config.data, "train",
                            replace(options, split=config.train_split, num_samples=config.train_num_samples))
        val = open_source(config.val_dir or config.val_data or config.data, "val",
                          replace(options, split=config.val_split))
        return train, val

    def _build_model(self) -> None:
        config, device = self.config, self.runtime.device
        model = create_model(config.model, pretrained=config.pretrained or False, num_classes=len(self.class_names),
                             drop_rate=config.drop_rate, drop_path_rate=config.drop_path_rate,
                             drop_block_rate=config.drop_block_rate, zero_init_last=config.zero_init_last,
                             attn=config.attn or None)
        if config.grad_checkpointing:
            model.set_grad_checkpointing(True)
        if config.sync_bn:
            if device.type != "cuda" or not self.runtime.distributed:
                raise SplitattnError("sync_bn needs CUDA and several processes (SyncBatchNorm is GPU-only in PyTorch)")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(device)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
                    if config.ema else None)
        self.network = (DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
                        if self.runtime.distributed else model)

    def _resume(self) -> None:
        """The shared resume rule (``training.resume``): same settings, same classes; then the EMA's weights."""
        self.state = resume_state(self.config, self.total_steps, {"class_names": self.class_names}, self.log,
                                  upgrade=self._upgrade)
        if self.state is None:
            return
        if self.ema is not None and "model_ema" in self.state:
            self.ema.load_state_dict(self.state["model_ema"])
        self.best_top1 = self.state.get("best_top1", -1.0)
        epoch, step = self.state["data_position"]
        self.log(f"resume: at epoch {epoch + 1}, step {step}")

    # ------------------------------------------------------------------------------ checkpoints
    def _upgrade(self, state: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint from before the shared loop names its place by epoch only: add the loop's keys."""
        if "step" not in state and {"epoch", "step_in_epoch"} <= set(state):
            epoch, in_epoch = state["epoch"], state["step_in_epoch"]
            state = {**state, "step": epoch * self.steps_per_epoch + in_epoch, "data_position": [epoch, in_epoch]}
        return state

    def _extra(self, step: int) -> dict[str, Any]:
        """What ``last.pth`` holds beside the shared training state: the model's name, class names,
        best top-1, config, EMA weights and the position as an epoch and a step in it."""
        epoch, step_in_epoch = divmod(step, self.steps_per_epoch)
        extra = {"model_name": self.config.model, "class_names": self.class_names, "best_top1": self.best_top1,
                 "config": self.config.to_dict(), "epoch": epoch, "step_in_epoch": step_in_epoch}
        if self.ema is not None:
            extra["model_ema"] = self.ema.state_dict()
        return extra

    def where(self, step: int, of: int | None = None) -> str:
        """``epoch 2, step 3`` (``of 8``, the epoch's steps, when ``of`` is given): a step of the run
        as an epoch and a step in it."""
        epoch, in_epoch = divmod(step - 1, self.steps_per_epoch)
        return f"epoch {epoch + 1}, step {in_epoch + 1}" + (f" of {self.steps_per_epoch}" if of is not None else "")

    # ----------------------------------------------------------------------------------- loop
    def fit(self) -> dict[str, Any]:
        """Train (or continue) to the last epoch; the last epoch's record, or ``{"stopped": True, ...}``."""
        config = self.config
        if self.runtime.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            if remove_partial_writes(self.output):
                self.log(f"removed half-written checkpoint files left in {self.output} by an interrupted run")
            save_config(config, self.output / "config.yaml")
            if self.start_step == 0:
                (self.output / "metrics.jsonl").unlink(missing_ok=True)
            self.log(f"config:\n{describe(config)}")
            if self.tracker_kinds:
                self.trackers = open_trackers(self.tracker_kinds, self.output, config.to_dict(), self.start_step)
        self.checkpointing = Checkpointing(self.output / LAST, config.checkpoint_every, self._extra,
                                           saved_step=self.start_step if self.state is not None else None,
                                           write=self.runtime.is_main)
        plan = LoopPlan(self.total_steps, self.runtime.device, config.amp, config.seed, config.deterministic,
                        self.runtime, per_pass=self.steps_per_epoch, on_pass=self._begin_epoch,
                        log_every=config.log_every, progress=config.progress and self.runtime.is_main)
        hook, status = tracker_hook(self.trackers), FAILED
        try:
            result = fit(self, self.train_loader, self.optimisation, plan, checkpoint=self.checkpointing,
                         state=self.state, on_step=[hook] if hook is not None else [], log=self.log,
                         stop_signals=self.stop_signals)
            status = STOPPED if result.stopped else FINISHED
            if self.trackers and not result.stopped:
                self.trackers.artefact(self.output / BEST, "checkpoint", result.step)
        finally:
            if self.trackers is not None:
                self.trackers.close(status)
        if result.stopped:
            return {"stopped": True, "epoch": (result.step - 1) // self.steps_per_epoch}
        return self.record

    def _begin_epoch(self, epoch: int) -> None:
        """The sampler's (or the stream's) order and share-out for ``epoch``; the epoch's counts from 0."""
        self.reorder.set_epoch(epoch)
        self.epoch_stats = dict.fromkeys(self.epoch_stats, 0.0)
        self.epoch_started = time.perf_counter()

    def loss(self, batch: tuple, step: int) -> tuple[torch.Tensor, dict[str, float]] | None:
        """Cross-entropy (label smoothing, mixup / cutmix) of a batch; None when some process's batch
        has fewer than two images, which BatchNorm cannot train on (every process skips it)."""
        images, labels, n_skipped = batch
        self.epoch_stats["skipped"] += n_skipped
        self.epoch_skips["train"].extend(n_skipped.samples)
        if all_reduce_sum([float(len(labels) < 2)], self.runtime)[0]:
            return None
        if self.config.drop_block_rate:  # the ramp walks every module: only when there is something to ramp
            set_drop_block_progress(self.model, (step - 1) / self.total_steps)
        device = self.runtime.device
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        targets = labels
        if self.mix is not None:
            images, targets = self.mix(images, labels)
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        logits = self.network(images)
        loss = self.criterion(logits.float(), targets)
        stats = self.epoch_stats
        stats["loss"] += float(loss.detach()) * len(labels)
        stats["seen"] += len(labels)
        if self.mix is None:  # accuracy against mixed targets means nothing
            stats["correct"] += topk_correct(logits.detach(), labels, ks=(1,))[0]
        return loss, {}

    def after_step(self) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def end_pass(self, index: int, save: Callable[[], None]) -> None:
        """The end of epoch ``index``: this epoch's numbers over every process, then :meth:`_end_epoch`."""
        elapsed = time.perf_counter() - self.epoch_started
        loss, correct, seen, skipped = all_reduce_sum([self.epoch_stats[k] for k in ("loss", "correct", "seen",
                                                                                   "skipped")], self.runtime)
        stats = {"train_loss": loss / max(seen, 1), "images_per_sec": seen / elapsed, "skipped_images": skipped}
        if self.mix is None:
            stats["train_top1"] = 100.0 * correct / max(seen, 1)
        self.record = self._end_epoch(index, stats, save)

    def _end_epoch(self, epoch: int, train_stats: dict[str, float], save: Callable[[], None]) -> dict[str, Any]:
        config = self.config
        val = evaluate(self.network, self._recording(self.val_loader), self.runtime, config.amp, config.channels_last)
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"], **train_stats,
                                  "val_loss": val["loss"], "val_top1": val["top1"], "val_top5": val["top5"],
                                  "val_images": val["images"]}
        record["skipped_images"] += val["skipped"]
        if self.ema is not None:
            ema_val = evaluate(self.ema.module, self.val_loader, self.runtime, config.amp, config.channels_last)
            record["ema_val_top1"] = ema_val["top1"]
        self._report_skips(epoch, record["skipped_images"])
        self.log(f"epoch {epoch + 1}/{config.epochs}: train loss {record['train_loss']:.4f}, val loss "
                 f"{record['val_loss']:.4f}, val top-1 {record['val_top1']:.2f}%, top-5 {record['val_top5']:.2f}%, "
                 f"{record['images_per_sec']:.0f} img/s")
        improved = record["val_top1"] > self.best_top1
        self.best_top1 = max(self.best_top1, record["val_top1"])
        save()
        if self.runtime.is_main:
            if improved:
                save_checkpoint({"model_name": config.model, "model": self.model.state_dict(),
                                 "class_names": self.class_names, "epoch": epoch + 1, "val_top1": record["val_top1"],
                                 "config": config.to_dict()}, self.output / BEST)
            append_jsonl(self.output / "metrics.jsonl", record)
            plot_curves(read_jsonl(self.output / "metrics.jsonl"), self.output / "curves.png")
            if self.trackers:
                preview = prediction_preview(self.model, self.val_loader.dataset, self.mean, self.std,
                                             self.class_names, self.runtime.device)
                log_epoch(self.trackers, record, (epoch + 1) * self.steps_per_epoch, self.output / "curves.png",
                          preview)
        barrier(self.runtime)
        return record

    def _recording(self, loader: DataLoader):
        """The loader's batches, the skipped samples' records kept for :meth:`_report_skips`."""
        for batch in loader:
            self.epoch_skips["val"].extend(batch[2].samples)
            yield batch

    def _report_skips(self, epoch: int, count: float) -> None:
        """Log how many samples this epoch skipped and name the ones not met before; all of them,
        from every rank, go to the run directory's ``skipped.txt`` (split, key, reason)."""
        new = []
        for split, records in self.epoch_skips.items():
            new += self.skip_report.add(split, gather_lists(records, self.runtime))
            records.clear()
        if count:
            named = f": {describe_skips(new)}" if new else " (the same as before)"
            self.log(f"epoch {epoch + 1}: skipped {int(count)} unreadable sample(s){named}; all in "
                     f"{self.output / SKIPPED_FILE}")
        if self.runtime.is_main and len(self.skip_report):
            self.output.mkdir(parents=True, exist_ok=True)
            self.skip_report.write(self.output / SKIPPED_FILE)


def train(config: TrainConfig) -> dict[str, Any]:
    """Run (or, with ``config.resume``, continue) a training run; returns the last epoch's metrics."""
    runtime = start(config.device)
    try:
        return Trainer(config, runtime).fit()
    finally:
        stop()

"""Training and evaluation of candidate networks.

Every candidate of a search is trained by :func:`train`, so it is written for throughput on
small in-memory datasets: when a split is held as tensors, the whole split moves to the device
once and batches are gathered by index, with no per-sample Python. It is also written for
reproducibility: all randomness is drawn from generators seeded by :class:`TrainSettings` inside
a forked RNG scope, so the same model, data and settings give bit-identical weights on CPU and
the caller's global RNG state is left as it was.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from sparsemod.data import Splits, tensors_of
from sparsemod.errors import BuildError, ConfigError, DataError, InfeasibleError

_ALLOWED_DEVICES = "'auto', 'cpu', 'cuda' or 'cuda:N'"
_EVAL_BATCH = 512

Batches = Iterable[tuple[Any, torch.Tensor]]


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device a device setting names.

    Args:
        name: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``. A ``torch.device`` is accepted as well.

    Raises:
        ConfigError: the name is not one of the above, or names CUDA on a machine without it
            (or a CUDA index that does not exist).
    """
    text = str(name) if isinstance(name, (str, torch.device)) else None
    key = text.strip().lower() if text is not None else ""
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "cuda" or (key.startswith("cuda:") and key[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but CUDA is not available here")
        if key != "cuda" and int(key[5:]) >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA "
                f"device(s) exist"
            )
        return torch.device(key)
    raise ConfigError(f"unknown device {name!r}; allowed: {_ALLOWED_DEVICES}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainSettings:
    """How to train one candidate.

    Args:
        epochs: passes over the training split; 0 trains nothing.
        batch_size: samples per optimizer step (the last batch of an epoch may be smaller).
        lr: Adam learning rate.
        weight_decay: Adam weight decay (L2 penalty).
        device: device setting, see :func:`resolve_device`; checked when training starts,
            since whether CUDA exists depends on the machine that trains.
        seed: seed of the shuffling and of dropout.

    Raises:
        ConfigError: a value is of the wrong type or out of range.
    """

    epochs: int
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if not _is_int(self.epochs) or self.epochs < 0:
            raise ConfigError(f"epochs must be an integer >= 0, got {self.epochs!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        # `not x > 0` rather than `x <= 0` so that NaN is refused too.
        if not _is_real(self.lr) or not self.lr > 0:
            raise ConfigError(f"lr must be a number > 0, got {self.lr!r}")
        if not _is_real(self.weight_decay) or not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not isinstance(self.device, str):
            raise ConfigError(f"device must be one of {_ALLOWED_DEVICES}, got {self.device!r}")
        if not _is_int(self.seed):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")


@dataclass(frozen=True)
class EpochRecord:
    """What one training epoch did.

    Args:
        epoch: the epoch number, counting from 1.
        loss: mean training loss over the epoch's samples.
        val_accuracy: top-1 accuracy on the validation split after the epoch.
        seconds: wall time of the training pass alone (validation is not included).
        samples: training samples seen in the epoch.
    """

    epoch: int
    loss: float
    val_accuracy: float
    seconds: float
    samples: int


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with all torch RNGs seeded, restoring the caller's RNG state afterwards.

    Used to build models deterministically: ``with seeded(0): model = build(...)``.

    Args:
        seed: the seed.
    """
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    # Naming every CUDA device: torch.manual_seed reseeds them all, so all must be restored.
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _training_rng(seed: int, device: torch.device) -> Iterator[None]:
    if device.type == "cuda":
        with seeded(seed):
            yield
        return
    # CPU training needs only the CPU generator; leaving CUDA alone also avoids initialising it.
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # A distinct, reproducible stream per (seed, epoch), independent of how many random numbers
    # the model drew (dropout) in earlier epochs.
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) & 0xFFFF_FFFF_FFFF_FFFF)


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    return value


def _tensor_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, order: torch.Tensor | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(y) if order is None else len(order), batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield x.index_select(0, index), y.index_select(0, index)


def _loader_batches(loader: DataLoader, device: torch.device) -> Iterator[tuple[Any, Any]]:
    for batch in loader:
        if not isinstance(batch, (list, tuple)) or len(batch) != 2:
            raise DataError(
                f"batches must be (inputs, targets) pairs, got a {type(batch).__name__}"
                + (f" of {len(batch)} items" if isinstance(batch, (list, tuple)) else "")
            )
        yield _to_device(batch[0], device), _to_device(batch[1], device)


def _eval_batches(
    dataset: Any, batch_size: int, device: torch.device, collate_fn: Callable | None
) -> Batches:
    tensors = tensors_of(dataset)
    if tensors is not None:
        x, y = tensors
        return ((xb.to(device), yb.to(device)) for xb, yb in _tensor_batches(x, y, batch_size))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
    return _loader_batches(loader, device)


def _top1(model: nn.Module, batches: Batches) -> float:
    was_training = model.training
    model.eval()
    correct: torch.Tensor | None = None
    total = 0
    try:
        with torch.inference_mode():
            for inputs, targets in batches:
                outputs = model(inputs)
                hits = (outputs.argmax(dim=1) == targets.to(outputs.device)).sum()
                # Summed on the device and read once: .item() per batch would sync the GPU.
                correct = hits if correct is None else correct + hits
                total += len(targets)
    finally:
        model.train(was_training)
    if correct is None or total == 0:
        raise DataError("cannot measure accuracy on an empty dataset")
    return int(correct) / total


def _model_device(model: nn.Module) -> torch.device:
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return first.device if first is not None else torch.device("cpu")


def accuracy(
    model: nn.Module,
    dataset: Any,
    *,
    batch_size: int = _EVAL_BATCH,
    device: str | torch.device = "auto",
    collate_fn: Callable | None = None,
) -> float:
    """Top-1 accuracy of a model on a dataset, in eval mode and without autograd.

    Args:
        model: a classifier returning logits of shape ``(N, num_classes)``. Its train/eval mode
            is restored afterwards.
        dataset: ``(x, y)`` samples; a ``TensorDataset`` (or ``Subset`` of one) is batched
            straight from its tensors.
        batch_size: samples per forward pass.
        device: ``"auto"`` runs where the model's first parameter or buffer lives, or on CPU
            when it has none (a quantized graph module, for example, runs only on CPU). Any
            other setting (see :func:`resolve_device`) moves the model there.
        collate_fn: batching function, used when the dataset is not held as tensors.

    Returns:
        The share of samples whose largest logit is the label, in ``[0, 1]``.

    Raises:
        DataError: the dataset is empty or does not yield ``(inputs, target)`` pairs.
        ConfigError: ``batch_size`` or ``device`` is not valid.
    """
    if not _is_int(batch_size) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if len(dataset) == 0:
        raise DataError("cannot measure accuracy on an empty dataset")
    if isinstance(device, str) and device.strip().lower() == "auto":
        target = _model_device(model)
    else:
        target = resolve_device(device)
        model.to(target)
    return _top1(model, _eval_batches(dataset, batch_size, target, collate_fn))


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Batches,
    after_step: Callable[[nn.Module], None] | None,
    device: torch.device,
) -> tuple[torch.Tensor, int]:
    # float64 so that the sum of many float32 batch losses loses nothing to rounding.
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    samples = 0
    for inputs, targets in batches:
        loss = F.cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            # no_grad so the hook may edit parameters in place (re-applying pruning masks).
            with torch.no_grad():
                after_step(model)
        count = len(targets)
        # Kept on the device: reading the loss every step would stall a GPU.
        loss_sum += loss.detach() * count
        samples += count
    return loss_sum, samples


def train(
    model: nn.Module,
    splits: Splits,
    settings: TrainSettings,
    *,
    after_step: Callable[[nn.Module], None] | None = None,
    val_dataset: Any = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> list[EpochRecord]:
    """Train a classifier with Adam and cross entropy, checking validation after every epoch.

    The model is moved to the settings' device and trained in place. Each epoch visits the
    training samples in an order drawn from a generator seeded by ``(seed, epoch)``; dropout
    draws from the CPU (or CUDA) RNG seeded with ``seed`` inside a forked RNG scope, so the
    caller's RNG state is untouched and runs repeat bit for bit on CPU. In-memory splits are
    batched straight from their tensors; other datasets go through a ``DataLoader`` with
    ``splits.collate_fn``, visiting samples in the same order.

    Args:
        model: the network, its weights already initialised (see :func:`seeded`).
        splits: the data; ``splits.train`` is trained on.
        settings: epochs, batch size, optimizer, device and seed.
        after_step: called with the model after every optimizer step, under ``torch.no_grad``
            (the pruning code re-applies its masks here so pruned weights stay zero).
        val_dataset: the data scored after each epoch; ``splits.val`` when omitted.
        on_epoch: called with each epoch's record; what it raises ends the training.

    Returns:
        One record per epoch; empty when ``settings.epochs`` is 0. The model is left in the
        train/eval mode it came in.

    Raises:
        ConfigError: the device setting is not valid on this machine.
        DataError: the training or validation data is empty or not ``(inputs, target)`` pairs.
        BuildError: the model has no trainable parameters.
        InfeasibleError: the loss became NaN or infinite.
    """
    device = resolve_device(settings.device)
    if settings.epochs == 0:
        return []
    val = splits.val if val_dataset is None else val_dataset
    if len(splits.train) == 0:
        raise DataError("the training split is empty")
    if len(val) == 0:
        raise DataError("the validation split is empty")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise BuildError("the model has no trainable parameters")

    model.to(device)
    optimizer = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    train_tensors = tensors_of(splits.train)
    if train_tensors is not None:
        x_train, y_train = (t.to(device) for t in train_tensors)
    val_tensors = tensors_of(val)
    if val_tensors is not None:
        x_val, y_val = (t.to(device) for t in val_tensors)
    n_train = len(splits.train)

    was_training = model.training
    history: list[EpochRecord] = []
    try:
        with _training_rng(settings.seed, device):
            for epoch in range(1, settings.epochs + 1):
                model.train()
                # The clock includes shuffling and batching, as a DataLoader loop's would.
                start = time.perf_counter()
                order = torch.randperm(n_train, generator=_epoch_generator(settings.seed, epoch))
                if n_train > 1 and n_train % settings.batch_size == 1:
                    # A last batch of one sample breaks batch norm in training mode; that
                    # sample is left out of this epoch (another one is left out next epoch).
                    order = order[:-1]
                batches: Batches
                if train_tensors is not None:
                    batches = _tensor_batches(
                        x_train, y_train, settings.batch_size, order.to(device)
                    )
                else:
                    loader = DataLoader(
                        splits.train,
                        batch_size=settings.batch_size,
                        sampler=order.tolist(),
                        collate_fn=splits.collate_fn,
                    )
                    batches = _loader_batches(loader, device)
                loss_sum, samples = _train_epoch(model, optimizer, batches, after_step, device)
                loss = float(loss_sum) / samples  # waits for the device, so the time is complete
                seconds = time.perf_counter() - start
                if not math.isfinite(loss):
                    raise InfeasibleError(f"training diverged: loss is {loss} at epoch {epoch}")
                if val_tensors is not None:
                    val_batches = _tensor_batches(x_val, y_val, _EVAL_BATCH)
                else:
                    val_batches = _eval_batches(val, _EVAL_BATCH, device, splits.collate_fn)
                history.append(
                    EpochRecord(epoch, loss, _top1(model, val_batches), seconds, samples)
                )
                if on_epoch is not None:
                    on_epoch(history[-1])
    finally:
        model.train(was_training)
    return history

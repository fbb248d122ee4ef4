"""One candidate end to end: build, train, prune, fine-tune, quantize, measure.

:func:`evaluate` is pure: no Ax, no SQL, no global state (randomness is drawn in a forked
RNG scope seeded from the settings), so any executor can run it. Every objective is
measured on the deployed network, the one that has been pruned and quantized; the error
is read on the validation split, and the test split is touched only when asked.
"""

from __future__ import annotations

import io
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from sparsemod import metrics
from sparsemod.compress import check_scheme, get_pruner, make_permanent, sparsity
from sparsemod.compress.quantize import load_exported, quantize, save_exported, swap_dynamic
from sparsemod.data import Splits, tensors_of
from sparsemod.errors import (
    BuildError,
    CompressionError,
    ConfigError,
    InfeasibleError,
    MeasureError,
)
from sparsemod.problems import Problem
from sparsemod.train import TrainSettings, accuracy, seeded, train

COMPLETED = "completed"
FAILED = "failed"


@dataclass(frozen=True)
class EvalSettings:
    """How one candidate is trained and compressed.

    Args:
        epochs: training epochs before pruning.
        batch_size: training batch size (not the number of arms per round).
        lr: learning rate when the parameters carry no ``lr``.
        pruning: prune at all.
        prune_method: a name in ``sparsemod.compress.PRUNERS``.
        keep_ratio: share of weights kept when the parameters carry no ``keep_ratio``.
        finetune_epochs: epochs of training after pruning, masks held.
        quant_scheme: ``none``, ``post`` or ``dynamic``.
        calibration_batches: training batches used to calibrate static quantization.
        target_flops: operations per second of the target device (latency = FLOPs / this).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: seeds the weights, the batch order and dropout.
        score_test: also score the deployed model on the test split.
        keep_model: put the deployed model's bytes in the result.
        keep_trained: put the trained float weights (before pruning) in the result, so a
            morphed child can start from them.
        debug: put the traceback of a failed candidate in its reason.
    """

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    pruning: bool = True
    prune_method: str = "magnitude"
    keep_ratio: float = 0.5
    finetune_epochs: int = 1
    quant_scheme: str = "post"
    calibration_batches: int = 8
    target_flops: float = 1e8
    device: str = "auto"
    seed: int = 0
    score_test: bool = False
    keep_model: bool = True
    keep_trained: bool = False
    debug: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "finetune_epochs", "calibration_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}: {value!r} is not an integer >= 0")
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            raise ConfigError(f"batch_size: {self.batch_size!r} is not an integer >= 1")
        if not 0.0 < self.keep_ratio <= 1.0:
            raise ConfigError(f"keep_ratio: {self.keep_ratio!r} is not in (0, 1]")
        if not self.target_flops > 0:
            raise ConfigError(f"flops: {self.target_flops!r} must be > 0 operations per second")
        check_scheme(self.quant_scheme)
        get_pruner(self.prune_method)


@dataclass(frozen=True)
class ModelArtifact:
    """The deployed model as bytes, and what rebuilds it (see :func:`load_model`).

    ``format`` is ``exported`` (``torch.export.save`` of a PT2E int8 model) or
    ``state_dict`` (the builder's network, with sparsemod's dynamic int8 layers swapped in
    when ``quant_scheme`` is ``dynamic``).
    """

    format: str
    data: bytes
    params: Mapping[str, Any]
    input_shape: tuple[int, ...]
    num_classes: int
    quant_scheme: str


@dataclass(frozen=True)
class TrialResult:
    """Everything one evaluation produced. Costs are ``None`` when the trial failed."""

    status: str
    params: Mapping[str, Any]
    seed: int
    failure_reason: str | None = None
    error: float | None = None
    accuracy_val: float | None = None
    accuracy_val_float: float | None = None
    accuracy_test: float | None = None
    model_size_bytes: int | None = None
    dense_size_bytes: int | None = None
    working_memory_bytes: int | None = None
    flops: int | None = None
    latency_s: float | None = None
    sparsity: float | None = None
    train_seconds: float = 0.0
    total_seconds: float = 0.0
    history: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    model: ModelArtifact | None = None
    trained_state: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.status == COMPLETED

    def objectives(self) -> dict[str, float]:
        """The four objectives by name (all minimised)."""
        return {
            "error": self.error,
            "model_size_bytes": self.model_size_bytes,
            "working_memory_bytes": self.working_memory_bytes,
            "latency_s": self.latency_s,
        }


@dataclass(frozen=True)
class WarmStart:
    """A trained parent to start a morphed child from (Net2Net-style weight inheritance)."""

    params: Mapping[str, Any]
    state: bytes


# Infeasible candidates end as failed trials; anything else is a bug and propagates.
_CANDIDATE_FAILURES = (BuildError, InfeasibleError, CompressionError, MeasureError)


def evaluate(
    problem: Problem,
    params: Mapping[str, Any],
    settings: EvalSettings,
    data: Splits | None = None,
    warm_start: WarmStart | None = None,
) -> TrialResult:
    """Build, train, prune, fine-tune, quantize and measure one candidate.

    Args:
        problem: space, builder and data.
        params: one point of ``problem.space``.
        settings: training and compression settings.
        data: the problem's splits, when the caller already loaded them.
        warm_start: a trained parent whose weights the child inherits before training.

    Returns:
        A completed result, or a failed one whose ``failure_reason`` says why the
        candidate could not be built, trained or measured.

    Raises:
        ConfigError: ``params`` are not a point of the space.
    """
    params = problem.space.validate(params)
    splits = data if data is not None else problem.load(settings.seed)
    start = time.perf_counter()
    history: list[dict[str, Any]] = []
    try:
        result = _run(problem, params, settings, splits, history, warm_start)
    except _CANDIDATE_FAILURES as exc:
        result = _failed(params, settings, f"{type(exc).__name__}: {exc}", exc, history)
    except torch.OutOfMemoryError as exc:
        result = _failed(params, settings, f"out of memory: {exc}", exc, history)
    return replace(result, total_seconds=time.perf_counter() - start)


def _failed(
    params: Mapping[str, Any],
    settings: EvalSettings,
    reason: str,
    exc: BaseException,
    history: list[dict[str, Any]],
) -> TrialResult:
    if settings.debug:
        reason += "\n" + "".join(traceback.format_exception(exc))
    return TrialResult(FAILED, params, settings.seed, failure_reason=reason, history=tuple(history))


def _build(
    problem: Problem,
    params: Mapping[str, Any],
    splits: Splits | None,
    shape: tuple[tuple[int, ...], int] | None = None,
) -> nn.Module:
    input_shape, num_classes = shape or (tuple(splits.input_shape), splits.num_classes)
    try:
        model = problem.build(params, input_shape, num_classes)
    except (BuildError, ConfigError):
        raise
    except Exception as exc:  # a user's builder may raise anything for a bad combination
        raise BuildError(f"the builder raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise BuildError(f"the builder returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _run(
    problem: Problem,
    params: Mapping[str, Any],
    settings: EvalSettings,
    splits: Splits,
    history: list[dict[str, Any]],
    warm_start: WarmStart | None = None,
) -> TrialResult:
    with seeded(settings.seed):
        model = _build(problem, params, splits)
    if warm_start is not None:
        counts = _inherit(problem, warm_start, model, splits)
        history.append(
            {
                "stage": "inherit",
                "epoch": 0,
                "loss": None,
                "sparsity": 0.0,
                "val_accuracy": accuracy(model, splits.val, collate_fn=splits.collate_fn),
                **counts,
            }
        )
    example = _example_input(splits)
    dense_size = metrics.model_size_bytes(model)
    lr = float(params.get("lr", settings.lr))
    tset = TrainSettings(
        settings.epochs, settings.batch_size, lr, device=settings.device, seed=settings.seed
    )
    train_start = time.perf_counter()
    for rec in _guarded_train(model, splits, tset):
        history.append(
            {
                "stage": "train",
                "epoch": rec.epoch,
                "loss": rec.loss,
                "val_accuracy": rec.val_accuracy,
                "sparsity": 0.0,
            }
        )

    trained_state = _state_bytes(model) if settings.keep_trained else None
    keep = float(params.get("keep_ratio", settings.keep_ratio))
    if settings.pruning and keep < 1.0:
        step = get_pruner(settings.prune_method).prune(model, keep)
        history.append(
            {
                "stage": "prune",
                "epoch": 0,
                "loss": None,
                "sparsity": step.sparsity,
                "val_accuracy": accuracy(model, splits.val, collate_fn=splits.collate_fn),
            }
        )
        if settings.finetune_epochs:
            fset = replace(tset, epochs=settings.finetune_epochs, seed=settings.seed + 1)
            for rec in _guarded_train(model, splits, fset):
                history.append(
                    {
                        "stage": "finetune",
                        "epoch": rec.epoch,
                        "loss": rec.loss,
                        "val_accuracy": rec.val_accuracy,
                        "sparsity": step.sparsity,
                    }
                )
        make_permanent(model)
    train_seconds = time.perf_counter() - train_start
    model.eval()
    acc_float = accuracy(model, splits.val, collate_fn=splits.collate_fn)

    deployed = quantize(
        model, settings.quant_scheme, _calibration_batches(splits, settings), example
    )
    acc_val = accuracy(deployed, splits.val, collate_fn=splits.collate_fn)
    history.append(
        {
            "stage": f"quantize:{settings.quant_scheme}",
            "epoch": 0,
            "loss": None,
            "val_accuracy": acc_val,
            "sparsity": sparsity(model),
        }
    )
    costs = metrics.measure_all(deployed, example, settings.target_flops)
    acc_test = (
        accuracy(deployed, splits.test, collate_fn=splits.collate_fn)
        if settings.score_test
        else None
    )
    artifact = (
        _artifact(deployed, model, params, splits, settings, example)
        if settings.keep_model
        else None
    )
    return TrialResult(
        COMPLETED,
        params,
        settings.seed,
        error=1.0 - acc_val,
        accuracy_val=acc_val,
        accuracy_val_float=acc_float,
        accuracy_test=acc_test,
        dense_size_bytes=dense_size,
        sparsity=sparsity(model),
        train_seconds=train_seconds,
        history=tuple(history),
        model=artifact,
        trained_state=trained_state,
        **costs,
    )


def _state_bytes(model: nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def _inherit(problem: Problem, warm: WarmStart, child: nn.Module, splits: Splits) -> dict[str, int]:
    from sparsemod.morph import inherit_weights

    parent = _build(problem, warm.params, splits)
    state = torch.load(io.BytesIO(warm.state), map_location="cpu", weights_only=True)
    parent.load_state_dict(state)
    return dict(inherit_weights(parent.eval(), child))


def _guarded_train(model: nn.Module, splits: Splits, tset: TrainSettings) -> list[Any]:
    try:
        return train(model, splits, tset)
    except RuntimeError as exc:
        # Shape mismatches inside a user's network surface here as RuntimeError from torch.
        if isinstance(exc, torch.OutOfMemoryError):
            raise
        raise InfeasibleError(f"the network does not run on this data: {exc}") from exc


def _example_input(splits: Splits) -> torch.Tensor:
    x = splits.val[0][0]
    return torch.as_tensor(x).unsqueeze(0).cpu()


def _calibration_batches(splits: Splits, settings: EvalSettings) -> Iterator[torch.Tensor]:
    tensors = tensors_of(splits.train)
    if tensors is not None:
        x = tensors[0]
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(settings.seed))
        for i in range(settings.calibration_batches):
            idx = order[i * settings.batch_size : (i + 1) * settings.batch_size]
            if len(idx):
                yield x[idx]
        return
    loader = torch.utils.data.DataLoader(
        splits.train, batch_size=settings.batch_size, collate_fn=splits.collate_fn
    )
    for i, (x, _) in enumerate(loader):
        if i >= settings.calibration_batches:
            break
        yield x


def _artifact(
    deployed: nn.Module,
    float_model: nn.Module,
    params: Mapping[str, Any],
    splits: Splits,
    settings: EvalSettings,
    example: torch.Tensor,
) -> ModelArtifact:
    if settings.quant_scheme == "post":
        fmt, data = "exported", save_exported(deployed, example)
    else:
        buf = io.BytesIO()
        torch.save(deployed.state_dict(), buf)
        fmt, data = "state_dict", buf.getvalue()
    return ModelArtifact(
        fmt,
        data,
        dict(params),
        tuple(splits.input_shape),
        splits.num_classes,
        settings.quant_scheme,
    )


_INT8_LAYERS: dict[str, tuple[type[nn.Module], ...]] = {
    "none": (),
    "post": (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear),
    "dynamic": (nn.Linear, nn.LSTM, nn.GRU),
}


def predict_costs(
    problem: Problem,
    params: Mapping[str, Any],
    settings: EvalSettings,
    input_shape: tuple[int, ...],
    num_classes: int,
) -> dict[str, float]:
    """The hardware objectives of a candidate before any training (milliseconds).

    Builds the network, applies the structural part of the compression (pruning to the
    keep ratio on the initial weights, int8 bit widths) and counts. FLOPs, latency and
    working memory equal what :func:`evaluate` will measure; the model size differs only
    by which weights pruning keeps in each layer after training (the total kept is the
    same) and by a few bytes of activation quantization parameters.

    Raises:
        BuildError: the parameters do not give a network.
        ConfigError: ``params`` are not a point of the space.
    """
    params = problem.space.validate(params)
    with seeded(settings.seed):
        model = _build(problem, params, splits=None, shape=(tuple(input_shape), num_classes))
    model.eval()
    keep = float(params.get("keep_ratio", settings.keep_ratio))
    if settings.pruning and keep < 1.0:
        get_pruner(settings.prune_method).prune(model, keep)
        make_permanent(model)
    x = torch.zeros((1, *input_shape))
    try:
        costs = metrics.measure_all(
            model,
            x,
            settings.target_flops,
            int8_layers=_INT8_LAYERS[settings.quant_scheme],
            activation_bytes=1 if settings.quant_scheme == "post" else None,
        )
    except MeasureError as exc:
        raise BuildError(f"the network does not run on its input: {exc}") from exc
    if settings.quant_scheme == "post":
        # Static int8 stores a (scale, zero point) per quantized activation: the input's and
        # each conv / linear output's but the last (the logits leave in float); pooling and
        # reshapes reuse their input's.
        layers = sum(isinstance(m, _INT8_LAYERS["post"]) for m in model.modules())
        costs["model_size_bytes"] += layers * (metrics.SCALE_BYTES + metrics.ZERO_POINT_BYTES)
    return costs


def load_model(artifact: ModelArtifact, problem: Problem) -> nn.Module:
    """The deployed model an artifact holds, in eval mode on the CPU.

    Args:
        artifact: ``TrialResult.model`` (or one read back from the store).
        problem: the problem it was found on (its builder rebuilds state-dict artifacts).

    Raises:
        ConfigError: the artifact's format is unknown.
    """
    if artifact.format == "exported":
        return load_exported(artifact.data)
    if artifact.format != "state_dict":
        raise ConfigError(f"model format {artifact.format!r} is not 'exported' or 'state_dict'")
    model = problem.build(dict(artifact.params), artifact.input_shape, artifact.num_classes)
    if artifact.quant_scheme == "dynamic":
        model = swap_dynamic(model)
    state = torch.load(io.BytesIO(artifact.data), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()

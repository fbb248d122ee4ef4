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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from sparsemod import objectives
from sparsemod.compress import PruneContext, Pruner, get_pruner, make_permanent, sparsity
from sparsemod.compress.cluster import cluster_weights
from sparsemod.compress.context import EpochHook, state_copy
from sparsemod.compress.quantize import get_scheme
from sparsemod.core.results import COMPLETED, FAILED, ModelArtifact, TrialResult, WarmStart
from sparsemod.data import Splits
from sparsemod.deploy.latency import hook_latency
from sparsemod.early_stopping import FrontStopper, StopTraining
from sparsemod.errors import BuildError
from sparsemod.eval_settings import EvalSettings, calibration_batches
from sparsemod.failures import candidate_failure, is_out_of_memory
from sparsemod.problems import Problem
from sparsemod.train import EpochRecord, TrainSettings, accuracy, seeded, train

# What importers take from here; the records live in sparsemod.core.results, the settings
# in sparsemod.eval_settings and the failure list in sparsemod.failures.
__all__ = [
    "COMPLETED", "FAILED", "EvalSettings", "ModelArtifact", "TrialResult", "WarmStart",
    "candidate_failure", "evaluate", "is_out_of_memory", "load_model", "predict_costs",
]  # fmt: skip


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
        A completed result; a stopped one (``settings.early_stop``: it could not join the
        front); or a failed one whose ``failure_reason`` says why the candidate did not
        build, ran out of memory or diverged (see :func:`candidate_failure`).

    Raises:
        ConfigError: ``params`` are not a point of the space.
        Exception: anything else raised on the way, unchanged: a bug stops the search.
    """
    params = problem.space.validate(params)
    splits = data if data is not None else problem.load(settings.seed)
    start = time.perf_counter()
    history: list[dict[str, Any]] = []
    try:
        result = _run(problem, params, settings, splits, history, warm_start)
    except StopTraining as stop:
        result = stop.result(params, settings.seed, history, time.perf_counter() - start)
    except Exception as exc:
        reason = candidate_failure(exc)
        if reason is None:
            raise
        result = _failed(params, settings, reason, exc, history)
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


def build_network(
    problem: Problem,
    params: Mapping[str, Any],
    splits: Splits | None,
    shape: tuple[tuple[int, ...], int] | None = None,
) -> nn.Module:
    """The problem's network for ``params``, for the data of ``splits`` or of ``shape``
    (``(input_shape, num_classes)``).

    Raises:
        BuildError: the builder says the parameters give no network, or it returned
            something that is not a module.
    """
    input_shape, num_classes = shape or (tuple(splits.input_shape), splits.num_classes)
    # A builder says BuildError for a combination that gives no network; anything else it
    # raises is a bug in it, and propagates. lut_bits is the evaluator's, not the builder's.
    arch = {k: v for k, v in params.items() if k != "lut_bits"}
    model = problem.build(arch, input_shape, num_classes)
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
        model = build_network(problem, params, splits)
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
    settings.cost_model().check_deploys(model, example)  # before any training
    dense_size = objectives.model_size_bytes(model)
    lr = float(params.get("lr", settings.lr))
    keep = float(params.get("keep_ratio", settings.keep_ratio))
    pruner = get_pruner(settings.prune_method) if settings.pruning and keep < 1.0 else None
    initial_state = state_copy(model) if pruner is not None else None
    # SNIP and dynamic sparse training start from the untrained network and train it
    # themselves: the dense training is replaced, not added to.
    dense_epochs = 0 if pruner is not None and pruner.at_init else settings.epochs
    tset = TrainSettings(
        dense_epochs, settings.batch_size, lr, device=settings.device, seed=settings.seed
    )
    stop = settings.early_stop
    stopper = FrontStopper(stop, len(splits.val), splits.num_classes) if stop else None

    def epoch_done(rec: EpochRecord) -> None:
        history.append({"stage": "train", "epoch": rec.epoch, "loss": rec.loss,
                        "val_accuracy": rec.val_accuracy, "sparsity": 0.0})  # fmt: skip
        if stopper is not None:
            stopper.epoch("train", rec.epoch, dense_epochs, rec.val_accuracy)

    train_start = time.perf_counter()
    train(model, splits, tset, on_epoch=epoch_done)

    at_init = pruner is not None and pruner.at_init
    trained_state = _state_bytes(model) if settings.keep_trained and not at_init else None
    if pruner is not None:
        hook = None if stopper is None else stopper.epoch
        _compress(model, pruner, keep, settings, splits, tset, initial_state, history, hook)
    if settings.keep_trained and at_init:
        # Nothing was trained dense: a child inherits the trained sparse weights instead.
        trained_state = _state_bytes(model)
    bits = _cluster(model, params, settings)
    train_seconds = time.perf_counter() - train_start
    model.eval()
    acc_float = accuracy(model, splits.val, collate_fn=splits.collate_fn)
    if bits:
        history.append({"stage": f"cluster:{bits}bit", "epoch": 0, "loss": None,
                        "val_accuracy": acc_float, "sparsity": sparsity(model)})  # fmt: skip

    scheme = settings.scheme()
    deployed = scheme.apply(model, calibration_batches(splits, settings), example)
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
    costs = settings.cost_model().costs(model, deployed, example, lut_bits=bits)
    if settings.latency_hook is not None:
        modelled = costs["latency_s"]
        calibration = calibration_batches(splits, settings)
        costs["latency_s"] = hook_latency(
            settings.latency_hook, model, example, calibration, bits
        )
        costs["latency_model_s"] = modelled
    acc_test = (
        accuracy(deployed, splits.test, collate_fn=splits.collate_fn)
        if settings.score_test
        else None
    )
    measured = {"error": 1.0 - acc_val, **costs}
    artifact = (
        _artifact(deployed, model, params, splits, settings, example)
        if settings.keep_model and not _dominated(measured, settings.model_front)
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


def _dominated(values: Mapping[str, float], front: Sequence[Sequence[tuple[str, float]]]) -> bool:
    """Whether a point of ``front`` is no worse in every objective and better in one."""
    for point in front:
        pairs = [(v, float(values[name])) for name, v in point]
        if all(p <= x for p, x in pairs) and any(p < x for p, x in pairs):
            return True
    return False


def _compress(
    model: nn.Module,
    pruner: Pruner,
    keep: float,
    settings: EvalSettings,
    splits: Splits,
    tset: TrainSettings,
    initial_state: dict[str, torch.Tensor] | None,
    history: list[dict[str, Any]],
    on_epoch: EpochHook | None,
) -> None:
    """Prune (and fine-tune) in place, appending each step to the history."""
    context = PruneContext(
        splits, replace(tset, epochs=settings.epochs), initial_state, settings.prune_options(),
        on_epoch,
    )  # fmt: skip
    steps = pruner.run(model, keep, context)
    history.extend(step.row() for step in steps)
    if settings.finetune_epochs and not pruner.trains:
        like = steps[-1]
        for step in context.train(
            model, settings.finetune_epochs, "finetune", like, seed=settings.seed + 1
        ):
            history.append(step.row())
    make_permanent(model)


def _cluster(model: nn.Module, params: Mapping[str, Any], settings: EvalSettings) -> int:
    """``compression = lut``: share each channel's weights among ``2**lut_bits`` values
    (the space's ``lut_bits``, else the setting's); returns the bits, 0 when off."""
    if settings.compression != "lut":
        return 0
    bits = params.get("lut_bits", settings.lut_bits)
    cluster_weights(model, bits)
    return bits


def _state_bytes(model: nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def _inherit(problem: Problem, warm: WarmStart, child: nn.Module, splits: Splits) -> dict[str, int]:
    from sparsemod.morph import inherit_weights

    parent = build_network(problem, warm.params, splits)
    state = torch.load(io.BytesIO(warm.state), map_location="cpu", weights_only=True)
    parent.load_state_dict(state)
    return dict(inherit_weights(parent.eval(), child))


def _example_input(splits: Splits) -> torch.Tensor:
    x = splits.val[0][0]
    return torch.as_tensor(x).unsqueeze(0).cpu()


def _artifact(
    deployed: nn.Module,
    float_model: nn.Module,
    params: Mapping[str, Any],
    splits: Splits,
    settings: EvalSettings,
    example: torch.Tensor,
) -> ModelArtifact:
    fmt, data = settings.scheme().save(deployed, example)
    return ModelArtifact(
        fmt,
        data,
        dict(params),
        tuple(splits.input_shape),
        splits.num_classes,
        settings.quant_scheme,
    )


def predict_costs(
    problem: Problem,
    params: Mapping[str, Any],
    settings: EvalSettings,
    input_shape: tuple[int, ...],
    num_classes: int,
    built: Callable[[nn.Module, dict[str, Any]], None] | None = None,
) -> dict[str, float]:
    """The hardware objectives of a candidate before any training (milliseconds).

    ``built`` is given the network as built and the validated parameters, before any
    compression (the search fingerprints the network there instead of building it again).

    Builds the network, applies the structural part of the compression (each pruning
    method's ``predict``: pruning to the keep ratio on the initial weights; for
    ``l1_structured`` the same rebuild with the same channel counts, so FLOPs and working
    memory fall as they will; int8 bit widths) and counts with the settings' cost model
    (:meth:`EvalSettings.cost_model`), the call :func:`evaluate` measures with. Under
    ``runtime = tflm`` every objective equals what :func:`evaluate` will measure (the
    runtime stores weights dense). Under ``ideal``, FLOPs, latency and working memory do;
    the model size differs only by which weights pruning keeps in each layer after
    training (the total kept is the same; exact for ``l1_structured``) and by a few bytes
    of activation quantization parameters, and with ``both`` on a recurrent network the
    untrained network is quantized for real.

    The latency is always the cost model's: a ``latency_hook`` measures the trained
    network on the device in :func:`evaluate` only (the trial's ``latency_s``, with the
    model's beside it as ``latency_model_s``), so the search chooses candidates by the
    modelled latency and ranks trials by the measured one.

    Raises:
        BuildError: the parameters do not give a network, or one the runtime cannot run.
        ConfigError: ``params`` are not a point of the space.
        MeasureError: torch.fx cannot trace the network.
        Exception: whatever else the builder or the network's forward raises (a bug).
    """
    params = problem.space.validate(params)
    with seeded(settings.seed):
        model = build_network(problem, params, splits=None, shape=(tuple(input_shape), num_classes))
    if built is not None:
        built(model, params)
    model.eval()
    keep = float(params.get("keep_ratio", settings.keep_ratio))
    if settings.pruning and keep < 1.0:
        get_pruner(settings.prune_method).predict(model, keep, settings.prune_options())
        make_permanent(model)
    bits = _cluster(model, params, settings)
    # Not zeros: TFLM's converter leaves out the QUANTIZE after an average pool whose
    # input is constant over space (objectives/tflm_ranges.py), and a zero input makes
    # every map constant. A fixed random input varies like data does.
    x = torch.randn((1, *input_shape), generator=torch.Generator().manual_seed(0))
    layout = settings.scheme().predict_layout(model, x)
    return settings.cost_model().costs(
        model,
        layout.model,
        x,
        int8_layers=layout.int8_layers,
        activation_bytes=layout.activation_bytes,
        extra_size_bytes=layout.extra_size_bytes,
        lut_bits=bits,
    )


def load_model(artifact: ModelArtifact, problem: Problem) -> nn.Module:
    """The deployed model an artifact holds, in eval mode on the CPU.

    Args:
        artifact: ``TrialResult.model`` (or one read back from the store).
        problem: the problem it was found on (its builder rebuilds state-dict artifacts).

    Raises:
        ConfigError: the artifact's format is unknown.
    """
    return get_scheme(artifact.quant_scheme).load(
        artifact,
        lambda: build_network(
            problem, artifact.params, None, (artifact.input_shape, artifact.num_classes)
        ),
    )

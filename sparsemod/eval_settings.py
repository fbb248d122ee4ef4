"""How one candidate is trained and compressed: :class:`EvalSettings`.

Every key a config file also has is checked by its one declaration (:mod:`sparsemod.settings`,
or the pruning method's ``Options``); the pruning method's name by the pruner registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import torch

from sparsemod.candidate import SPECS, CandidateSettings
from sparsemod.combinations import deployed_scheme
from sparsemod.compress import get_pruner
from sparsemod.compress.options import PrunerOptions
from sparsemod.compress.quantize import QuantScheme, get_scheme
from sparsemod.compress.registry import check_pruner_options, pruner_options
from sparsemod.data import Splits, tensors_of
from sparsemod.early_stopping import EarlyStop
from sparsemod.errors import ConfigError
from sparsemod.hooks import check_latency_hook
from sparsemod.objectives.runtime import CostModel
from sparsemod.settings import check_setting, default


@dataclass(frozen=True)
class EvalSettings(CandidateSettings):
    """How one candidate is trained, compressed and measured.

    Takes every key of :class:`~sparsemod.candidate.CandidateSettings` (pruning and its
    methods' options, ``quant_scheme``, ``runtime``, ``latency_model``, ``latency_hook``,
    ``board``, ``device``, ``seed``, ``debug``), as declared in
    :data:`sparsemod.candidate.SPECS`, and:

    Args:
        epochs: training epochs before pruning (a phase's ``epochsN``).
        batch_size: training batch size, the config's ``train_batch_size``.
        lr: learning rate when the parameters carry no ``lr``.
        calibration_batches: training batches used to calibrate static quantization.
        target_flops: operations per second of the device, the config's ``flops``.
        score_test: also score the deployed model on the test split.
        keep_model: put the deployed model's bytes in the result.
        keep_trained: put the trained float weights (before pruning) in the result, so a
            morphed child can start from them; after training for ``snip`` and
            ``dynamic_sparse``, which never train a dense network.
        model_front: with ``keep_model``, the Pareto set known when the candidate was
            submitted, one tuple of ``(objective, value)`` pairs a point: a candidate that
            one of these points dominates can never join the Pareto set, so its model is
            not serialised (``torch.export`` of the int8 graph takes most of a second).
        early_stop: stop training once the candidate cannot join the front (the error it
            must beat, set per candidate by the search; ``None``: train every epoch).

    ``snip`` and ``dynamic_sparse`` replace the dense training (they start from the
    untrained network and train ``epochs``); ``imp`` trains ``epochs`` again each round
    after the dense training; ``finetune_epochs`` is not used by the methods that end with
    their own training.
    """

    epochs: int = default("epochs")
    batch_size: int = default("train_batch_size")
    lr: float = 1e-3
    calibration_batches: int = 8
    target_flops: float = default("flops")
    score_test: bool = False
    keep_model: bool = True
    keep_trained: bool = False
    model_front: tuple[tuple[tuple[str, float], ...], ...] = ()
    early_stop: EarlyStop | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "finetune_epochs", "calibration_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}: {value!r} is not an integer >= 0")
        # Every key a config file also has is checked by its one declaration there.
        check_setting("train_batch_size", self.batch_size)
        check_setting("flops", self.target_flops)
        for f in fields(CandidateSettings):
            check_setting(f.name, getattr(self, f.name), specs=SPECS)
        get_pruner(self.prune_method)  # registered (the name check above is only its shape)
        self.cost_model().check_scheme(self.quant_scheme)
        check_latency_hook(self.latency_hook, self.runtime)
        if self.latency_hook is not None:
            from sparsemod.deploy.base import missing_runtime

            missing = missing_runtime("tflite")  # said before anything trains
            if missing:
                raise ConfigError(
                    f"latency_hook: the hook measures the exported .tflite artifact; {missing}",
                    key="latency_hook",
                )
        check_pruner_options(self, self.prune_method, self.epochs)

    def scheme(self) -> QuantScheme:
        """The quantization scheme candidates are deployed with (``both`` is ``post`` under
        TFLM and ExecuTorch: :func:`~sparsemod.combinations.deployed_scheme`)."""
        return get_scheme(deployed_scheme(self.runtime, self.quant_scheme))

    def cost_model(self) -> CostModel:
        """How the hardware objectives are counted (the same before and after training)."""
        return CostModel(
            self.runtime, self.latency_model, self.target_flops, self.board, self.compression
        )

    def prune_options(self) -> PrunerOptions:
        """The pruning method's own keys, as its ``Options``."""
        return pruner_options(self.prune_method, self)


def calibration_batches(splits: Splits, settings: EvalSettings) -> Iterator[torch.Tensor]:
    """The training batches static quantization calibrates on: ``calibration_batches`` of
    ``batch_size`` samples, drawn with the settings' seed (a loader's first batches when the
    training split is not held in tensors)."""
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

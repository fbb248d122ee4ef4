"""How one candidate is trained and compressed: :class:`EvalSettings`.

Every key a config file also has is checked by its one declaration in
:mod:`sparsemod.settings`; the pruning method's name by the pruner registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparsemod.combinations import check_pruning
from sparsemod.compress import PruneOptions, get_pruner
from sparsemod.core.boards import Board
from sparsemod.errors import ConfigError
from sparsemod.hooks import check_latency_hook
from sparsemod.objectives.runtime import CostModel
from sparsemod.settings import check_setting


@dataclass(frozen=True)
class EvalSettings:
    """How one candidate is trained and compressed.

    Args:
        epochs: training epochs before pruning.
        batch_size: training batch size (not the number of arms per round).
        lr: learning rate when the parameters carry no ``lr``.
        pruning: prune at all.
        prune_method: a name in ``sparsemod.compress.PRUNERS``: ``magnitude``,
            ``magnitude_layerwise``, ``l1_structured``, ``imp``, ``snip`` or
            ``dynamic_sparse``. ``snip`` and ``dynamic_sparse`` replace the dense training
            (they start from the untrained network and train ``epochs``); ``imp`` trains
            ``epochs`` again each round after the dense training.
        keep_ratio: share of weights kept when the parameters carry no ``keep_ratio``
            (for ``l1_structured``, the share of each layer's output channels).
        finetune_epochs: epochs of training after pruning, masks held; not used by the
            methods that end with their own training (``imp``, ``snip``,
            ``dynamic_sparse``).
        imp_rate: ``imp``: share of the remaining weights pruned each round (None: 0.2,
            or what ``imp_rounds`` implies).
        imp_rounds: ``imp``: rounds to reach the keep ratio (0: as many as ``imp_rate``
            needs).
        rewind_epoch: ``imp``: rewind survivors to their values after this epoch of the
            dense training (0: the initialisation).
        snip_batches: ``snip``: training batches the sensitivity is summed over.
        dst_interval: ``dynamic_sparse``: optimizer steps between drop / regrow updates
            (0: once an epoch).
        dst_drop_fraction: ``dynamic_sparse``: share of active weights dropped and regrown
            at the first update (cosine-decayed).
        dst_regrow: ``dynamic_sparse``: ``random`` (SET) or ``gradient`` (RigL).
        quant_scheme: ``none``, ``post``, ``dynamic`` or ``both``.
        calibration_batches: training batches used to calibrate static quantization.
        target_flops: operations per second of the target device (latency = FLOPs / this).
        runtime: whose counts model size and working memory are: ``tflm`` (the flatbuffer
            and the arena TensorFlow Lite Micro needs) or ``ideal`` (SpArSe's sparse
            storage and peak live activations); see :mod:`sparsemod.objectives.runtime`.
        latency_model: ``flops`` (FLOPs / ``target_flops``) or ``ops`` (cycles per op on
            ``board``'s core).
        latency_hook: ``package.module:function`` that measures latency on the device: it
            gets the exported ``.tflite`` :class:`~sparsemod.deploy.base.Artifact` and
            returns seconds, which become the trial's ``latency_s`` (the modelled one is
            kept as ``latency_model_s``). Needs ``runtime = tflm``; kept as text so the
            settings pickle to workers, and imported where the trial runs.
        board: the device (:mod:`sparsemod.core.boards`); ``ops`` needs one.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: seeds the weights, the batch order and dropout.
        score_test: also score the deployed model on the test split.
        keep_model: put the deployed model's bytes in the result.
        keep_trained: put the trained float weights (before pruning) in the result, so a
            morphed child can start from them; after training for ``snip`` and
            ``dynamic_sparse``, which never train a dense network.
        debug: put the traceback of a failed candidate in its reason.
        model_front: with ``keep_model``, the Pareto set known when the candidate was
            submitted, one tuple of ``(objective, value)`` pairs a point: a candidate that
            one of these points dominates can never join the Pareto set, so its model is
            not serialised (``torch.export`` of the int8 graph takes most of a second).
    """

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    pruning: bool = True
    prune_method: str = "magnitude"
    keep_ratio: float = 0.5
    finetune_epochs: int = 1
    imp_rate: float | None = None
    imp_rounds: int = 0
    rewind_epoch: int = 0
    snip_batches: int = 4
    dst_interval: int = 0
    dst_drop_fraction: float = 0.3
    dst_regrow: str = "random"
    quant_scheme: str = "post"
    calibration_batches: int = 8
    target_flops: float = 1e8
    runtime: str = "tflm"
    latency_model: str = "flops"
    latency_hook: str | None = None
    board: Board | None = None
    device: str = "auto"
    seed: int = 0
    score_test: bool = False
    keep_model: bool = True
    keep_trained: bool = False
    debug: bool = False
    model_front: tuple[tuple[tuple[str, float], ...], ...] = ()

    def __post_init__(self) -> None:
        for name in ("epochs", "finetune_epochs", "calibration_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}: {value!r} is not an integer >= 0")
        # The keys a config file also has are checked by their one declaration there.
        check_setting("train_batch_size", self.batch_size)
        check_setting("flops", self.target_flops)
        for key in ("pruning", "prune_method", "keep_ratio", "finetune_epochs", "quant_scheme"):
            check_setting(key, getattr(self, key))
        get_pruner(self.prune_method)  # registered (the name check above is only its shape)
        self.prune_options()
        self.cost_model().check_scheme(self.quant_scheme)
        check_setting("latency_hook", self.latency_hook)
        check_latency_hook(self.latency_hook, self.runtime)
        if self.latency_hook is not None:
            from sparsemod.deploy.base import missing_runtime

            missing = missing_runtime("tflite")  # said before anything trains
            if missing:
                raise ConfigError(
                    f"latency_hook: the hook measures the exported .tflite artifact; {missing}",
                    key="latency_hook",
                )
        check_pruning(
            self.prune_method, self.imp_rate, self.imp_rounds, self.rewind_epoch, self.epochs
        )

    def cost_model(self) -> CostModel:
        """How the hardware objectives are counted (the same before and after training)."""
        return CostModel(self.runtime, self.latency_model, self.target_flops, self.board)

    def prune_options(self) -> PruneOptions:
        """The settings of the multi-step pruning methods."""
        return PruneOptions(
            imp_rate=self.imp_rate,
            imp_rounds=self.imp_rounds,
            rewind_epoch=self.rewind_epoch,
            snip_batches=self.snip_batches,
            dst_interval=self.dst_interval,
            dst_drop_fraction=self.dst_drop_fraction,
            dst_regrow=self.dst_regrow,
        )

"""What a pruning method that needs data or training gets: :class:`PruneContext`.

The evaluator builds one per candidate (:func:`training_context`); tests and examples can
build their own. Training goes through :func:`sparsemod.train.train`, so a method trains
exactly as the candidate was trained (same optimizer, batches, seed and device), and
masks attached with ``torch.nn.utils.prune`` are held while it does.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from sparsemod.compress.masks import count_weights, make_permanent
from sparsemod.compress.options import PrunerOptions
from sparsemod.compress.step import PruneStep
from sparsemod.data import Splits, tensors_of
from sparsemod.errors import ConfigError
from sparsemod.train import TrainSettings, accuracy, train

EpochHook = Callable[[str, int, int, float], None]

AfterStep = Callable[[nn.Module], None]


@dataclass
class PruneContext:
    """Data, training and history for a pruning method.

    Args:
        splits: the candidate's data.
        settings: how the candidate trains (epochs, batch size, lr, device, seed); a method
            that trains for "the candidate's epochs" trains ``settings.epochs``.
        initial_state: the network's weights before training (a state dict), for rewinding.
        options: the method's own keys, an instance of its ``Options``
            (:meth:`Pruner.options <sparsemod.compress.base.Pruner.options>`; ``None``:
            their defaults).
        on_epoch: called after every epoch :meth:`train` runs, as ``(stage, epoch,
            epochs of the stage, validation accuracy)``; what it raises ends the method
            (early stopping: :class:`sparsemod.early_stopping.FrontStopper`).
    """

    splits: Splits
    settings: TrainSettings
    initial_state: Mapping[str, torch.Tensor] | None = None
    options: PrunerOptions | None = None
    on_epoch: EpochHook | None = None

    @property
    def seed(self) -> int:
        return self.settings.seed

    def val_accuracy(self, model: nn.Module) -> float:
        return accuracy(model, self.splits.val, collate_fn=self.splits.collate_fn)

    def scored(self, model: nn.Module, step: PruneStep) -> PruneStep:
        """The step with the model's validation accuracy filled in."""
        return replace(step, val_accuracy=self.val_accuracy(model))

    def train(
        self,
        model: nn.Module,
        epochs: int,
        stage: str,
        like: PruneStep,
        *,
        after_step: AfterStep | None = None,
        seed: int | None = None,
    ) -> list[PruneStep]:
        """Train ``model`` in place for ``epochs``, masks held; one step per epoch.

        Args:
            model: the network, masked or not.
            epochs: epochs to train (0 trains nothing).
            stage: the stage name the epochs are recorded under.
            like: the method, keep ratio and total weights the steps carry.
            after_step: called after every optimizer step (dynamic sparse training).
            seed: the shuffling / dropout seed; the candidate's when omitted.

        Raises:
            InfeasibleError: training diverged.
            Exception: anything else training raised, unchanged (the evaluator decides
                what is a candidate failure).
        """
        tset = replace(self.settings, epochs=epochs, seed=self.seed if seed is None else seed)
        hook = self.on_epoch
        records = train(
            model,
            self.splits,
            tset,
            after_step=after_step,
            on_epoch=None
            if hook is None
            else lambda r: hook(stage, r.epoch, epochs, r.val_accuracy),
        )
        _, kept = count_weights(model)
        return [
            replace(
                like,
                weights_kept=kept,
                stage=stage,
                epoch=r.epoch,
                loss=r.loss,
                val_accuracy=r.val_accuracy,
                detail={},
            )
            for r in records
        ]

    def state_at(self, model: nn.Module, epoch: int) -> dict[str, torch.Tensor]:
        """The weights the dense training had after ``epoch`` epochs (0: the initial ones).

        Training is reproducible (same seed, same batch order per epoch), so the state after
        ``k`` epochs is got by training a copy of the initial network for ``k`` epochs:
        bit-identical on CPU.

        Raises:
            ConfigError: the context has no initial state.
        """
        if self.initial_state is None:
            raise ConfigError("rewinding needs the network's initial state in the context")
        if epoch == 0:
            return {k: v.detach().clone() for k, v in self.initial_state.items()}
        twin = copy.deepcopy(model)
        make_permanent(twin)
        twin.load_state_dict(self.initial_state)
        train(twin, self.splits, replace(self.settings, epochs=epoch))
        return {k: v.detach().clone() for k, v in twin.state_dict().items()}

    def steps_per_epoch(self) -> int:
        """Optimizer steps :func:`sparsemod.train.train` makes in one epoch."""
        n, bs = len(self.splits.train), self.settings.batch_size
        if n > 1 and n % bs == 1:
            n -= 1  # train leaves out a last batch of one sample
        return math.ceil(n / bs)

    def batches(self, count: int, seed: int | None = None) -> Iterator[tuple[Any, Any]]:
        """``count`` shuffled training batches of the candidate's batch size."""
        bs = self.settings.batch_size
        gen = torch.Generator().manual_seed(self.seed if seed is None else seed)
        tensors = tensors_of(self.splits.train)
        if tensors is not None:
            x, y = tensors
            order = torch.randperm(len(y), generator=gen)
            for i in range(count):
                idx = order.roll(-i * bs)[:bs]  # wraps around when count * bs > len(y)
                yield x[idx], y[idx]
            return
        loader = torch.utils.data.DataLoader(
            self.splits.train,
            batch_size=bs,
            shuffle=True,
            generator=gen,
            collate_fn=self.splits.collate_fn,
        )
        seen = 0
        while seen < count:
            for batch in loader:
                yield batch[0], batch[1]
                seen += 1
                if seen == count:
                    return


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a model's state dict."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

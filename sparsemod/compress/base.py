"""The protocol every pruning method plugs into: :class:`Pruner`.

A pruner attaches masks to a model (``torch.nn.utils.prune`` reparametrisation, so the
pruned weights stay zero while the model is fine-tuned) and
:func:`~sparsemod.compress.masks.make_permanent` removes the masks, leaving plain tensors
with real zeros in them. Structured pruning (:mod:`sparsemod.compress.structured`)
rebuilds smaller layers instead.

Two entry points:

* ``prune(model, keep_ratio) -> PruneStep``: one shot on the weights as they are, no data.
  The magnitude methods and ``l1_structured`` implement it.
* ``run(model, keep_ratio, context) -> list[PruneStep]``: what the evaluator calls. The
  default calls ``prune`` once; methods that need data or training (lottery tickets, SNIP,
  dynamic sparse training) override it and use the :class:`PruneContext`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from torch import nn

from sparsemod.compress.options import PrunerOptions
from sparsemod.compress.step import PruneStep
from sparsemod.errors import CompressionError, ConfigError

if TYPE_CHECKING:
    from sparsemod.compress.context import PruneContext


class Pruner:
    """A pruning method. Subclasses implement ``prune`` or ``run`` (or both).

    Class attributes tell the evaluator where the method sits in the pipeline:

    * ``at_init``: the method starts from the untrained network and does the training
      itself (SNIP, dynamic sparse training); the evaluator skips its dense training.
    * ``trains``: the method ends with its own training, so the evaluator does not
      fine-tune after it.

    A method with keys of its own declares them in a nested ``Options``
    (:class:`~sparsemod.compress.options.PrunerOptions`); the config, the REST service and
    README's key table take them from there.
    """

    name: ClassVar[str]
    at_init: ClassVar[bool] = False
    trains: ClassVar[bool] = False
    Options: ClassVar[type[PrunerOptions]] = PrunerOptions

    def options(self, context: PruneContext) -> Any:
        """The method's options in ``context`` (their defaults when it has none).

        Raises:
            ConfigError: the context holds another method's options.
        """
        given = context.options
        if given is None:
            return self.Options()
        if not isinstance(given, self.Options):
            raise ConfigError(
                f"prune_method {self.name!r} takes {self.Options.__qualname__}, "
                f"not {type(given).__qualname__}"
            )
        return given

    def prune(self, model: nn.Module, keep_ratio: float) -> PruneStep:
        """Prune ``model`` in place, in one shot, without data.

        Args:
            model: the model (trained, for the magnitude methods).
            keep_ratio: fraction of the prunable weights (or channels) to keep, in (0, 1].

        Returns:
            The step, with the number of weights kept.

        Raises:
            CompressionError: the model has nothing this method can prune, or the method
                needs data and training (call :meth:`run`).
        """
        raise CompressionError(
            f"prune_method {self.name!r} needs data and training: call run(model, "
            "keep_ratio, context)"
        )

    def run(self, model: nn.Module, keep_ratio: float, context: PruneContext) -> list[PruneStep]:
        """Prune ``model`` in place with whatever data and training the method needs.

        Args:
            model: the trained network, or the untrained one when ``at_init`` is set.
            keep_ratio: fraction of the prunable weights (or channels) to keep.
            context: the data, a way to train with masks held, the initial weights.

        Returns:
            The steps taken, in order, each with the validation accuracy after it.
        """
        step = self.prune(model, keep_ratio)
        return [context.scored(model, step)]

    def predict(
        self, model: nn.Module, keep_ratio: float, options: PrunerOptions | None = None
    ) -> None:
        """Apply the structural part of the method to an untrained model, without data.

        Used to predict the costs of a candidate before training: what matters is how many
        weights (or channels) of each layer remain, not which.

        Args:
            model: the untrained network.
            keep_ratio: as for :meth:`prune`.
            options: the method's ``Options`` the candidate runs with (``None``: defaults).
        """
        self.prune(model, keep_ratio)

"""Iterative magnitude pruning with weight rewinding: lottery tickets (Frankle & Carbin).

Starting from the trained dense network, each round

1. prunes a share of the *remaining* weights, smallest magnitude first, over the whole
   network (global);
2. rewinds every surviving weight (and the biases, batch norms ...) to its value at the
   rewind point: the initialisation (``rewind_epoch = 0``), or after ``k`` epochs of the
   dense training ("late rewinding", for networks where rewinding to init fails);
3. retrains the masked network for the epochs the dense network trained (minus the
   rewind epoch), the masks held.

The keep ratio is the target, reached exactly in the last round: with ``imp_rate = p``
there are ``ceil(log(keep) / log(1 - p))`` rounds, each pruning ``p`` of what is left,
the last one only what is still to prune (a rounding leftover smaller than a tenth of a
round is pruned with the round before); with ``imp_rounds = n`` each round keeps
``keep ** (1 / n)`` of what is left. The final weight count is ``round(keep * total)``,
the same as one-shot global magnitude pruning, so the costs predicted before training are
those of ``magnitude``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from sparsemod.compress.base import Pruner
from sparsemod.compress.context import PruneContext
from sparsemod.compress.magnitude import GlobalMagnitude
from sparsemod.compress.masks import (
    apply_masks,
    check_keep_ratio,
    count_weights,
    make_permanent,
    masks_of,
    named_prunable,
    require_prunable,
    top_k_masks,
)
from sparsemod.compress.options import PrunerOptions, option
from sparsemod.compress.step import PruneStep
from sparsemod.errors import ConfigError
from sparsemod.spec import integer, share

DEFAULT_RATE = 0.2


def schedule(
    total: int, keep_ratio: float, rate: float | None = None, rounds: int = 0
) -> list[int]:
    """Weights left after each round of IMP.

    Args:
        total: prunable weights of the dense network.
        keep_ratio: share left after the last round.
        rate: share of the remaining weights each round prunes (default 0.2).
        rounds: number of rounds instead (each keeps ``keep_ratio ** (1 / rounds)``).

    Returns:
        Counts, decreasing, ending at ``round(keep_ratio * total)``; empty when nothing is
        to be pruned.
    """
    target = max(1, round(keep_ratio * total))
    if target >= total:
        return []
    if rounds:
        counts = [round(total * keep_ratio ** (r / rounds)) for r in range(1, rounds + 1)]
        return [max(c, target) for c in counts[:-1]] + [target]
    keep_each = 1.0 - (DEFAULT_RATE if rate is None else rate)
    counts, left = [], total
    while True:
        # At least one weight a round, or a tiny network would never get there.
        before, left = left, min(round(left * keep_each), left - 1)
        # A round that would leave less than a tenth of a round to prune goes to the target:
        # (0.8 ** 10) * total can be a rounding error short of ten rounds of 20 %.
        if left <= target or left - target < 0.1 * (before - left):
            return [*counts, target]
        counts.append(left)


def prune_round(model: nn.Module, keep: int) -> dict[str, torch.Tensor]:
    """Masks keeping the ``keep`` largest-magnitude weights among those still unmasked."""
    masks = masks_of(model)
    named = named_prunable(model)
    scores = {}
    for key, (m, n) in named.items():
        w = getattr(m, n).detach().abs()
        # -inf so that a weight pruned earlier never comes back, even if it is not zero.
        scores[key] = torch.where(masks[key], w, torch.full_like(w, -math.inf))
    return top_k_masks(scores, keep)


def rewind(
    model: nn.Module, state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
) -> None:
    """Load ``state`` into ``model`` and mask it: the survivors take their rewound values."""
    make_permanent(model)
    model.load_state_dict(state)
    apply_masks(model, masks)


class LotteryTicket(Pruner):
    """``imp``: iterative magnitude pruning with rewinding (see the module docstring)."""

    name = "imp"
    trains = True

    @dataclass(frozen=True)
    class Options(PrunerOptions):
        """``imp``'s keys: how fast it prunes, and where the survivors rewind to."""

        imp_rate: float | None = option(
            share(zero=False, optional=True).declare(
                None, "imp: share of the remaining weights pruned a round, in (0, 1) (none: 0.2)"
            )
        )
        imp_rounds: int = option(
            integer(0).declare(0, "imp: rounds to reach keep_ratio, 0 = as the rate needs")
        )
        rewind_epoch: int = option(
            integer(0).declare(0, "imp: epoch the survivors rewind to, 0 = initialisation")
        )

        def check(self, epochs: int | None) -> None:
            if self.imp_rate is not None and self.imp_rounds:
                raise ConfigError(
                    f"imp_rate {self.imp_rate!r} and imp_rounds {self.imp_rounds!r}: give one "
                    "of them (the keep ratio fixes the other)",
                    key="imp_rounds",
                )
            if epochs is not None and self.rewind_epoch > epochs:
                raise ConfigError(
                    f"rewind_epoch: {self.rewind_epoch!r} is after the last epoch of training "
                    f"({epochs})",
                    key="rewind_epoch",
                )

    def run(self, model: nn.Module, keep_ratio: float, context: PruneContext) -> list[PruneStep]:
        keep_ratio = check_keep_ratio(keep_ratio)
        require_prunable(model)
        opts = self.options(context)
        total, _ = count_weights(model)
        counts = schedule(total, keep_ratio, opts.imp_rate, opts.imp_rounds)
        opts.check(context.settings.epochs)
        start = context.state_at(model, opts.rewind_epoch)
        epochs = context.settings.epochs - opts.rewind_epoch
        like = PruneStep(self.name, keep_ratio, total, total)
        steps: list[PruneStep] = []
        for r, keep in enumerate(counts, start=1):
            masks = prune_round(model, keep)
            apply_masks(model, masks)
            detail = {"round": r, "rounds": len(counts)}
            pruned = PruneStep(self.name, keep_ratio, total, keep, f"prune:imp-{r}", detail=detail)
            steps.append(context.scored(model, pruned))
            rewind(model, start, masks)
            back = PruneStep(self.name, keep_ratio, total, keep, f"rewind:imp-{r}", detail=detail)
            steps.append(context.scored(model, back))
            steps += context.train(model, epochs, f"retrain:imp-{r}", like)
        return steps

    def predict(
        self, model: nn.Module, keep_ratio: float, options: PrunerOptions | None = None
    ) -> None:
        GlobalMagnitude().predict(model, keep_ratio)

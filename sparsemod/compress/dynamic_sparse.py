"""Dynamic sparse training at a fixed density: SET (Mocanu et al., 2018) and RigL (Evci et al.).

The untrained network starts sparse, its weights kept at random, so many in each layer
(``dst_distribution``):

* ``uniform``: every prunable layer keeps exactly ``max(1, round(keep_ratio * n))`` of its
  ``n`` weights;
* ``erk`` (Erdős–Rényi-Kernel, RigL's default): a layer's density is proportional to the sum
  of its weight's dimensions over their product (``(out + in + kh + kw) / (out * in * kh *
  kw)`` for a convolution, ``(out + in) / (out * in)`` for a linear layer), scaled so that
  the network keeps ``keep_ratio`` of its weights; a layer that would pass 1 stays dense,
  and the others are scaled again. Small layers (the classifier, the first convolution)
  stay denser, and the large ones give up more.

It trains for the
candidate's epochs; every ``dst_interval`` optimizer steps (default: once an epoch) each
layer drops the active weights of smallest magnitude and regrows as many inactive ones,

* ``dst_regrow = random`` (SET): chosen at random, started at a random value of the
  layer's scale;
* ``dst_regrow = gradient`` (RigL): those with the largest dense gradient, started at 0.

The share dropped starts at ``dst_drop_fraction`` and decays to 0 on a cosine, with the
last update at ``dst_end`` of training (0.75: RigL's schedule), so the final connections
get trained.
Each layer's count never changes, so the density is exact throughout; at the end the masks
are attached (and held by any later training) and made permanent by the evaluator.

The masks are re-applied after every optimizer step through ``train``'s ``after_step``
hook, on plain weights, so the hook sees the dense gradient RigL needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sparsemod.compress.base import Pruner
from sparsemod.compress.context import PruneContext
from sparsemod.compress.magnitude import LayerwiseMagnitude
from sparsemod.compress.masks import (
    apply_masks,
    check_keep_ratio,
    count_weights,
    make_permanent,
    named_prunable,
    require_prunable,
)
from sparsemod.compress.options import PrunerOptions, option
from sparsemod.compress.step import PruneStep
from sparsemod.spec import choice, integer, real, share

DISTRIBUTIONS = ("uniform", "erk")


def layer_counts(
    model: nn.Module, keep_ratio: float, distribution: str = "uniform"
) -> dict[str, int]:
    """The weights each prunable layer keeps (see the module docstring), by mask key."""
    shapes = {k: tuple(getattr(m, n).shape) for k, (m, n) in named_prunable(model).items()}
    sizes = {k: math.prod(shape) for k, shape in shapes.items()}
    if distribution == "uniform":
        return {k: max(1, round(keep_ratio * n)) for k, n in sizes.items()}
    raw = {k: sum(shape) / sizes[k] for k, shape in shapes.items()}
    target = keep_ratio * sum(sizes.values())
    dense: set[str] = set()
    scale = 0.0
    while len(dense) < len(sizes):
        rest = [k for k in sizes if k not in dense]
        scale = (target - sum(sizes[k] for k in dense)) / sum(raw[k] * sizes[k] for k in rest)
        over = [k for k in rest if scale * raw[k] > 1.0]
        if not over:
            break
        dense.add(max(over, key=lambda k: raw[k]))  # the densest first, then scale again
    return {
        k: n if k in dense else min(n, max(1, round(scale * raw[k] * n))) for k, n in sizes.items()
    }


def random_masks(
    model: nn.Module, keep_ratio: float, gen: torch.Generator, distribution: str = "uniform"
) -> dict[str, torch.Tensor]:
    """Per layer, exactly :func:`layer_counts` weights kept at random."""
    masks = {}
    counts = layer_counts(model, keep_ratio, distribution)
    for key, (m, n) in named_prunable(model).items():
        w = getattr(m, n)
        keep = counts[key]
        flat = torch.zeros(w.numel(), dtype=torch.bool)
        flat[torch.randperm(w.numel(), generator=gen)[:keep]] = True
        masks[key] = flat.reshape(w.shape).to(w.device)
    return masks


class _Updater:
    """The ``after_step`` hook: hold the masks, and drop / regrow every ``interval`` steps."""

    def __init__(
        self,
        model: nn.Module,
        masks: dict[str, torch.Tensor],
        context: PruneContext,
        opts: DynamicSparse.Options,
        like: PruneStep,
        gen: torch.Generator,
    ) -> None:
        self.named = named_prunable(model)
        self.masks = masks
        self.context, self.like, self.gen = context, like, gen
        self.per_epoch = context.steps_per_epoch()
        self.interval = opts.dst_interval or self.per_epoch
        self.last = int(opts.dst_end * context.settings.epochs * self.per_epoch)
        self.fraction, self.regrow = opts.dst_drop_fraction, opts.dst_regrow
        self.t = 0
        self.steps: list[PruneStep] = []

    def __call__(self, model: nn.Module) -> None:
        self.t += 1
        for key, (m, n) in self.named.items():
            getattr(m, n).mul_(self.masks[key].to(getattr(m, n).device))
        if self.t % self.interval == 0 and self.t <= self.last and self.fraction > 0:
            self._update(model)

    def _update(self, model: nn.Module) -> None:
        share = self.fraction * (1 + math.cos(math.pi * self.t / self.last)) / 2
        dropped = 0
        for key, (m, n) in self.named.items():
            w = getattr(m, n)
            mask = self.masks[key].to(w.device)
            active = int(mask.sum())
            k = min(round(share * active), mask.numel() - active)
            if k <= 0:
                continue
            scale = float(w[mask].std()) if active > 1 else 0.01
            # Drop the k active weights of least magnitude.
            mag = torch.where(mask, w.abs(), torch.full_like(w, math.inf)).reshape(-1)
            drop = torch.topk(mag, k, largest=False).indices
            # Grow k among those inactive before the drop.
            if self.regrow == "gradient" and w.grad is not None:
                score = w.grad.abs().reshape(-1).clone()
            else:
                score = torch.rand(w.numel(), generator=self.gen).to(w.device)
            score[mask.reshape(-1)] = -math.inf
            grow = torch.topk(score, k).indices
            flat = mask.reshape(-1).clone()
            flat[drop] = False
            flat[grow] = True
            w.reshape(-1)[drop] = 0.0
            if self.regrow == "random":
                init = torch.randn(k, generator=self.gen).to(w.device) * scale
                w.reshape(-1)[grow] = init.to(w.dtype)
            else:
                w.reshape(-1)[grow] = 0.0
            self.masks[key] = flat.reshape(mask.shape)
            dropped += k
        total, kept = count_weights(model)
        step = PruneStep(
            self.like.method,
            self.like.keep_ratio,
            total,
            kept,
            "regrow",
            epoch=(self.t - 1) // self.per_epoch + 1,
            detail={"step": self.t, "dropped": dropped, "grown": dropped, "regrow": self.regrow},
        )
        self.steps.append(self.context.scored(model, step))


class DynamicSparse(Pruner):
    """``dynamic_sparse``: sparse training with prune-and-regrow (see the module docstring)."""

    name = "dynamic_sparse"
    at_init = True
    trains = True

    @dataclass(frozen=True)
    class Options(PrunerOptions):
        """``dynamic_sparse``'s keys: how often, how much and how the connections move."""

        dst_interval: int = option(
            integer(0).declare(
                0, "dynamic_sparse: optimizer steps between updates, 0 = once an epoch"
            )
        )
        dst_drop_fraction: float = option(
            share(zero=True).declare(
                0.3, "dynamic_sparse: share dropped and regrown at an update, in [0, 1)"
            )
        )
        dst_regrow: str = option(
            choice(("random", "gradient")).declare(
                "random", "dynamic_sparse: random (SET) or gradient (RigL)"
            )
        )
        dst_end: float = option(
            real(0.0, 1.0, "a number in (0, 1]").declare(
                0.75,
                "dynamic_sparse: share of training after which the masks stop moving "
                "(RigL's T_end)",
            )
        )
        dst_distribution: str = option(
            choice(DISTRIBUTIONS).declare(
                "uniform",
                "dynamic_sparse: how the kept weights spread over the layers: uniform "
                "(keep_ratio of each) or erk (Erdős–Rényi-Kernel: small layers denser, RigL's)",
            )
        )

    def run(self, model: nn.Module, keep_ratio: float, context: PruneContext) -> list[PruneStep]:
        keep_ratio = check_keep_ratio(keep_ratio)
        require_prunable(model)
        make_permanent(model)
        opts = self.options(context)
        gen = torch.Generator().manual_seed(context.seed)
        masks = random_masks(model, keep_ratio, gen, opts.dst_distribution)
        named = named_prunable(model)
        with torch.no_grad():
            for key, (m, n) in named.items():
                getattr(m, n).mul_(masks[key])
        total = sum(mk.numel() for mk in masks.values())
        kept = sum(int(mk.sum()) for mk in masks.values())
        start = PruneStep(self.name, keep_ratio, total, kept, "sparse_init")
        steps = [context.scored(model, start)]
        like = PruneStep(self.name, keep_ratio, total, kept)
        updater = _Updater(model, masks, context, opts, like, gen)
        epochs = context.train(model, context.settings.epochs, "train", like, after_step=updater)
        apply_masks(model, updater.masks)
        for rec in epochs:
            steps += [s for s in updater.steps if s.epoch == rec.epoch]
            steps.append(rec)
        return steps

    def predict(
        self, model: nn.Module, keep_ratio: float, options: PrunerOptions | None = None
    ) -> None:
        distribution = options.dst_distribution if isinstance(options, self.Options) else None
        if distribution in (None, "uniform"):
            LayerwiseMagnitude().predict(model, keep_ratio)
            return
        # Only the counts matter to the costs: any weights, so many in each layer.
        masks = random_masks(model, keep_ratio, torch.Generator().manual_seed(0), distribution)
        apply_masks(model, masks)

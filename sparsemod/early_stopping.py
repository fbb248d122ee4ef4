"""Early stopping on the front: stop a candidate whose final error cannot join it.

A candidate's size, memory and latency are known exactly before it trains, so whether it
can improve the hypervolume depends on its final error alone. It adds volume exactly when
its error is below :func:`error_to_beat`: the lowest error among the trials that already
cost no more than it in every cost objective (none: the reference's error; outside the
reference box: nothing can be added). After each epoch from ``min_epochs`` on, the
evaluator predicts the final validation error from the learning curve so far and stops when
``P(final < error_to_beat) < 1 - stop_confidence``.

The learning curve model is the power law ``e(t) = A t^c`` (``c <= 0``), fitted by least
squares on ``log e`` against ``log t`` over the epochs seen, and the prediction of the final
error is log-normal around it (an error is never below 0, and the curves' noise grows with
the error). Power laws are the family
learning curves follow (Domhan et al. 2015, Viering & Loog 2022); this one has two
parameters, so two epochs fix it and its fit is closed-form and stable, where the three-
and four-parameter curves need four or more noisy points and a non-linear fit. A GP over
(params, epoch), as in freeze-thaw BO, would share information between candidates but needs
many curves, and a search here has tens. The prediction is kept optimistic, so that a stop
is a safe bet:

* the mean is the lower of the fitted final error and the best error seen;
* the log-spread adds the validation split's binomial noise, the fit's residuals, and
  :data:`SPREAD` times the (log) improvement the fit still expects: the extrapolation is
  the least certain part;
* a curve still near chance (above 90 % of the error of guessing) is not judged: such a
  network often plateaus for a few epochs and then drops, which no curve can foresee;
* the deployed network's error is usually above the float one (pruning and int8 cost a
  little), and the prediction ignores that gap, which again errs towards training on.

``SPREAD = 3`` was measured, not tuned by feel: on 28 learning curves of random digits MLPs
and CNNs (12 epochs; ``python bench/stop_calibration.py``), a stop at the 95 % boundary
would have been wrong (the final error below the predicted 5 % quantile) for 4.5 % of the
(curve, epoch, horizon) cases; with ``SPREAD = 2``, 8 %, with 1, 13 %.

Nothing here imports torch: the training loops call :meth:`FrontStopper.epoch` with numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparsemod.core.results import STOPPED, TrialResult

SPREAD = 3.0
"""How uncertain the rest of the curve is, in units of the improvement the fit still
expects (see the module docstring for how it was chosen)."""
NEAR_CHANCE = 0.9
"""A curve whose error is above this share of the error of guessing is not judged yet."""


@dataclass(frozen=True)
class EarlyStop:
    """What the evaluator needs to stop one candidate.

    Args:
        error_to_beat: the error below which the candidate adds hypervolume (see
            :func:`error_to_beat`); 0 stops it at ``min_epochs``.
        min_epochs: epochs of each training stage before the first check, >= 1.
        confidence: stop when the chance of beating ``error_to_beat`` is below
            ``1 - confidence``.
    """

    error_to_beat: float
    min_epochs: int = 2
    confidence: float = 0.95


class StopTraining(Exception):
    """Raised from a training loop's epoch hook: the candidate cannot join the front.

    Attributes:
        stage: the training stage it stopped in (``train``, ``finetune``, a method's own).
        epoch: the epochs of that stage it trained.
        val_error: its validation error (float network) at that epoch.
        predicted: the predicted final validation error.
        chance: the probability it had of beating the error to beat.
    """

    def __init__(
        self, stage: str, epoch: int, val_error: float, predicted: float, chance: float
    ) -> None:
        super().__init__(
            f"stopped at {stage} epoch {epoch}: validation error {val_error:.4f}, predicted "
            f"final {predicted:.4f}, chance of joining the front {chance:.3g}"
        )
        self.stage, self.epoch, self.val_error = stage, epoch, val_error
        self.predicted, self.chance = predicted, chance

    def result(
        self, params: Mapping[str, Any], seed: int, history: list[dict[str, Any]], seconds: float
    ) -> TrialResult:
        """The trial's result: ``stopped``, its history ending with a ``stopped`` row."""
        row = {"stage": "stopped", "epoch": self.epoch, "loss": None, "sparsity": None}
        history.append(row | {"val_accuracy": 1.0 - self.val_error, "during": self.stage})
        return TrialResult(
            STOPPED, params, seed, history=tuple(history), train_seconds=seconds,
            stop_epoch=self.epoch, stop_val_error=self.val_error, predicted_error=self.predicted,
        )  # fmt: skip


def predict_final(errors: Sequence[float], total: int, n_val: int) -> tuple[float, float]:
    """The final validation error after ``total`` epochs, from the first ``len(errors)``.

    Args:
        errors: the validation error after each epoch so far (epoch 1 first).
        total: the epochs the stage would train.
        n_val: the validation samples each error was measured on (its binomial noise).

    Returns:
        ``(error, sd)``: the predicted final error and the standard deviation of its
        logarithm (the prediction is log-normal: an error is never below 0), optimistic as
        the module docstring says.
    """
    k = len(errors)
    floor = 1.0 / n_val  # an error of 0 is read as one sample wrong
    best = max(min(errors), floor)
    noise = math.sqrt(best * (1 - best) / n_val) / best  # binomial, relative
    if k < 2:
        return best, 1.0  # one point says little about the rest
    xs = [math.log(t) for t in range(1, k + 1)]
    ys = [math.log(max(e, floor)) for e in errors]
    mx, my = sum(xs) / k, sum(ys) / k
    c = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    c = min(c, 0.0)  # a curve that rises with training is read as flat
    a = my - c * mx
    resid = math.sqrt(sum((y - a - c * x) ** 2 for x, y in zip(xs, ys)) / max(k - 2, 1))
    final = a + c * math.log(total)
    gain = (a + c * xs[-1]) - final
    sd = math.sqrt(noise**2 + resid**2 + (SPREAD * gain) ** 2)
    return math.exp(min(final, math.log(best))), sd


def chance_below(error: float, sd: float, bar: float) -> float:
    """``P(X < bar)`` for a log-normal ``X`` of median ``error`` and log-sd ``sd``."""
    if bar <= 0:
        return 0.0
    if sd <= 0:
        return float(error < bar)
    return 0.5 * math.erfc((math.log(error) - math.log(bar)) / (sd * math.sqrt(2)))


def error_to_beat(
    costs: Mapping[str, float],
    front: Sequence[Mapping[str, float]],
    ref_point: Mapping[str, float],
) -> float:
    """The error below which a candidate of ``costs`` adds hypervolume.

    Args:
        costs: the candidate's exact costs, by objective name (the error left out).
        front: the completed trials' objectives (a superset of the front is fine), each
            with ``error`` and every cost in ``costs``.
        ref_point: the hypervolume's reference, by objective name.

    Returns:
        The lowest error of a trial that costs no more in every cost objective, capped by
        the reference's error; 0.0 when a cost is at or beyond its reference (such a
        candidate adds nothing whatever its error).
    """
    if any(costs[c] >= ref_point[c] for c in costs):
        return 0.0
    bar = float(ref_point["error"])
    for point in front:
        if all(point[c] <= costs[c] for c in costs):
            bar = min(bar, float(point["error"]))
    return bar


@dataclass
class FrontStopper:
    """The per-candidate check the training loops call after every epoch.

    Args:
        rule: the error to beat and the thresholds.
        n_val: validation samples (for the binomial noise of each error).
        num_classes: classes of the task (guessing errs ``1 - 1 / num_classes``).
    """

    rule: EarlyStop
    n_val: int
    num_classes: int
    curves: dict[str, list[float]] = field(default_factory=dict)

    def epoch(self, stage: str, epoch: int, total: int, val_accuracy: float) -> None:
        """Record one epoch of ``stage`` (of ``total``); stop the candidate if hopeless.

        Raises:
            StopTraining: the chance of beating the error to beat is below the threshold.
        """
        curve = self.curves.setdefault(stage, [])
        if epoch == 1:
            curve.clear()  # a stage that trains again (imp's rounds) starts a new curve
        curve.append(1.0 - val_accuracy)
        if epoch < self.rule.min_epochs or epoch >= total:
            return
        if curve[-1] > NEAR_CHANCE * (1.0 - 1.0 / self.num_classes):
            return  # not learning yet: nothing to extrapolate
        mean, sd = predict_final(curve, total, self.n_val)
        chance = chance_below(mean, sd, self.rule.error_to_beat)
        if chance < 1.0 - self.rule.confidence:
            raise StopTraining(stage, epoch, curve[-1], mean, chance)

"""How often early stopping on the front would stop a candidate wrongly, by ``SPREAD``.

Trains random candidates of the digits MLP and CNN spaces (Sobol points, no pruning) for
``--epochs`` epochs and keeps their validation-error curves. For each curve, each check
epoch ``k`` (2, 3, 4, 6) and each horizon ``T`` (8 and ``--epochs``), it predicts the final
error from the first ``k`` epochs (:func:`sparsemod.early_stopping.predict_final`) and counts
a *wrong stop* when the error reached at ``T`` lies below the prediction's 5 % quantile: a
candidate whose error to beat sat just there would have been stopped at
``stop_confidence = 0.95`` and would have joined the front. Curves still near chance at
``k`` are skipped, as the stopper skips them. The table gives the wrong-stop rate per
``k`` for several values of ``SPREAD``; the rate should be near 5 %.

    python bench/stop_calibration.py                 # 16 MLPs + 12 CNNs, 12 epochs, ~2 min
    python bench/stop_calibration.py --problems digits_mlp --n 30
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sparsemod.early_stopping as es  # noqa: E402
from sparsemod.evaluate import EvalSettings, evaluate  # noqa: E402
from sparsemod.problems import get_problem  # noqa: E402
from sparsemod.search.encoding import Encoder  # noqa: E402

USED = es.SPREAD  # the value sparsemod ships (the table below tries others)
CHECKS = (2, 3, 4, 6)
SPREADS = (1.0, 2.0, 3.0, 4.0)


def curves(problem_name: str, n: int, epochs: int, seed: int) -> list[tuple[list[float], int, int]]:
    """``(validation errors per epoch, validation samples, classes)`` of ``n`` candidates."""
    problem = get_problem(problem_name)
    data = problem.load(0)
    settings = EvalSettings(epochs=epochs, device="cpu", keep_model=False, pruning=False)
    found = []
    for params in Encoder(problem.space).sample(n, seed):
        result = evaluate(problem, params, settings, data)
        errors = [1 - h["val_accuracy"] for h in result.history if h["stage"] == "train"]
        if len(errors) == epochs:
            found.append((errors, len(data.val), data.num_classes))
    return found


def wrong_stops(found: list, epochs: int, spread: float) -> dict[int, tuple[float, int]]:
    """Per check epoch: the share of wrong stops at the 95 % boundary, and the cases."""
    es.SPREAD = spread
    z = 1.6449  # the 5 % quantile of a standard normal
    rates: dict[int, list[bool]] = {k: [] for k in CHECKS}
    for errors, n_val, classes in found:
        for total in sorted({8, epochs}):
            for k in CHECKS:
                if k >= total or errors[k - 1] > es.NEAR_CHANCE * (1 - 1 / classes):
                    continue
                median, sd = es.predict_final(errors[:k], total, n_val)
                low = math.log(median) - z * sd
                rates[k].append(math.log(max(errors[total - 1], 1 / n_val)) < low)
    return {k: (sum(v) / len(v) if v else math.nan, len(v)) for k, v in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["digits_mlp", "digits_cnn"])
    parser.add_argument("--n", type=int, nargs="+", default=[16, 12], help="per problem")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    counts = args.n * len(args.problems) if len(args.n) == 1 else args.n
    found = []
    for name, n in zip(args.problems, counts):
        got = curves(name, n, args.epochs, args.seed)
        print(f"{name}: {len(got)} curves of {args.epochs} epochs", flush=True)
        found += got
    print(f"\n| SPREAD | {' | '.join(f'k = {k}' for k in CHECKS)} | all |")
    print("|---:|" + "---:|" * (len(CHECKS) + 1))
    for spread in SPREADS:
        rates = wrong_stops(found, args.epochs, spread)
        cases = sum(n for _, n in rates.values())
        total = sum(r * n for r, n in rates.values() if n) / cases
        cells = " | ".join(f"{r:.1%} ({n})" for r, n in rates.values())
        print(f"| {spread:g} | {cells} | {total:.1%} |")
    print(f"\nsparsemod uses SPREAD = {USED:g} (sparsemod.early_stopping.SPREAD)")


if __name__ == "__main__":
    main()

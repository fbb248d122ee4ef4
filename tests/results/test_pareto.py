"""Pareto masks and hypervolume, with numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparsemod.errors import ConfigError
from sparsemod.results.pareto import hypervolume, hypervolume_trace, pareto_mask

nan = math.nan


# --------------------------------------------------------------------------- pareto_mask


def test_pareto_mask_hand_example():
    values = np.array(
        [
            [1, 4],  # Pareto
            [2, 2],  # Pareto
            [2, 2],  # exact duplicate of a Pareto row: kept too
            [3, 3],  # dominated by (2, 2)
            [nan, 0],  # NaN: never Pareto, even with the best second value
            [4, 1],  # Pareto
            [1, 5],  # dominated by (1, 4): equal in one, worse in the other
        ],
        dtype=float,
    )
    assert pareto_mask(values).tolist() == [True, True, True, False, False, True, False]


def test_pareto_mask_empty_and_single():
    assert pareto_mask(np.zeros((0, 3))).tolist() == []
    assert pareto_mask(np.array([[5.0, 5.0]])).tolist() == [True]


# --------------------------------------------------------------------------- hypervolume


def test_hypervolume_one_objective():
    # the best normalised value is 0.3 -> 1 - 0.3; 1.5 lies beyond the reference
    assert hypervolume(np.array([[0.3], [0.6], [1.5]]), [1.0]) == pytest.approx(0.7)
    # reference 2: the best is 0.3 / 2 = 0.15 -> 0.85
    assert hypervolume(np.array([[0.3], [0.6]]), [2.0]) == pytest.approx(0.85)


def test_hypervolume_two_objectives():
    assert hypervolume(np.array([[0.5, 0.5]]), [1, 1]) == pytest.approx(0.25)
    # two 0.8 x 0.4 boxes (0.32 each) overlapping on [0.6, 1]^2 (0.16): 0.64 - 0.16
    two = np.array([[0.2, 0.6], [0.6, 0.2]])
    assert hypervolume(two, [1, 1]) == pytest.approx(0.48)
    # a dominated point adds nothing
    assert hypervolume(np.vstack([two, [0.7, 0.7]]), [1, 1]) == pytest.approx(0.48)


def test_hypervolume_three_objectives():
    assert hypervolume(np.array([[0.5, 0.5, 0.5]]), [1, 1, 1]) == pytest.approx(0.125)
    # boxes 1 x 1 x 0.5 and 0.5 x 0.5 x 1 overlap on [0.5, 1]^3 (0.125): 0.5 + 0.25 - 0.125
    values = np.array([[0.0, 0.0, 0.5], [0.5, 0.5, 0.0]])
    assert hypervolume(values, [1, 1, 1]) == pytest.approx(0.625)


def test_hypervolume_ignores_points_outside_the_reference_and_nan():
    values = np.array(
        [
            [0.5, 0.5],
            [1.2, 0.1],  # beyond the reference in the first objective
            [1.0, 0.1],  # on the reference: does not strictly dominate it
            [nan, 0.1],
        ]
    )
    assert hypervolume(values, [1, 1]) == pytest.approx(0.25)
    assert hypervolume(values[1:], [1, 1]) == 0.0
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0


def test_hypervolume_is_normalised_by_the_reference():
    # (0.4, 60) / (2, 100) = (0.2, 0.6) and (1.2, 20) / (2, 100) = (0.6, 0.2): as above, 0.48
    values = np.array([[0.4, 60.0], [1.2, 20.0]])
    assert hypervolume(values, [2, 100]) == pytest.approx(0.48)


@pytest.mark.parametrize("ref", [[1.0], [1.0, 1.0, 1.0], [1.0, 0.0], [1.0, -2.0]])
def test_hypervolume_rejects_bad_reference(ref):
    with pytest.raises(ConfigError, match="ref_point"):
        hypervolume(np.array([[0.5, 0.5]]), ref)


def test_hypervolume_trace_is_monotone_and_matches_hand_values():
    values = np.array(
        [
            [0.5, 0.5],  # 0.25
            [0.8, 0.8],  # dominated: 0.25
            [0.2, 0.6],  # + [0.2, 0.5] x [0.6, 1] = 0.3 * 0.4 -> 0.37
            [nan, 0.0],  # ignored: 0.37
            [0.6, 0.2],  # + [0.6, 1] x [0.2, 0.5] = 0.4 * 0.3 -> 0.49
            [2.0, 0.0],  # outside: 0.49
        ]
    )
    trace = hypervolume_trace(values, [1, 1])
    assert trace == pytest.approx([0.25, 0.25, 0.37, 0.37, 0.49, 0.49])
    assert all(b >= a for a, b in zip(trace, trace[1:]))
    assert hypervolume_trace(np.zeros((0, 2)), [1, 1]) == []


def _botorch_hv(values: np.ndarray, ref: list[float]) -> float:
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    norm = values / np.asarray(ref)
    norm = norm[(norm < 1).all(axis=1)]
    hv = Hypervolume(ref_point=-torch.ones(norm.shape[1], dtype=torch.double))
    return float(hv.compute(-torch.as_tensor(norm, dtype=torch.double)))


@pytest.mark.parametrize("m", [2, 3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_numpy_sweep_is_botorchs_hypervolume(m: int, seed: int) -> None:
    # from four objectives on: the split boxes (FreeCells)
    rng = np.random.default_rng(seed)
    ref = [1.0, 2.0, 50.0, 3.0, 0.5][:m]
    values = rng.uniform(0, 1.1, size=(60, m)) * np.asarray(ref)
    values[:5] = values[5:10]  # exact duplicates
    values[10, 0] = values[11, 0]  # ties in one objective
    assert hypervolume(values, ref) == pytest.approx(_botorch_hv(values, ref), rel=1e-12)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_the_trace_is_the_hypervolume_of_each_prefix(m: int) -> None:
    rng = np.random.default_rng(m)
    ref = [1.0] * m
    values = rng.uniform(0, 1.05, size=(40, m))
    values[7] = np.nan
    trace = hypervolume_trace(values, ref)
    want = [hypervolume(values[: i + 1], ref) for i in range(len(values))]
    assert trace == pytest.approx(want, rel=1e-12, abs=1e-15)

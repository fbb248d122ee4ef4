"""Milliseconds to cost one candidate before training (``predict_costs``), per problem.

The GP and morphism rounds cost every new candidate of their pool, so this is most of what
a round spends besides fitting the GP. Sobol points of each problem's space, one torch
thread, the default [TRAIN] settings (``runtime = tflm``):

    python bench/costing.py                          # digits_cnn, digits_mlp; 150 points
    python bench/costing.py --problems digits_cnn --n 300
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from sparsemod.config import load_config  # noqa: E402
from sparsemod.errors import BuildError  # noqa: E402
from sparsemod.evaluate import predict_costs  # noqa: E402
from sparsemod.problems import get_problem  # noqa: E402
from sparsemod.search.encoding import Encoder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["digits_cnn", "digits_mlp"])
    parser.add_argument("--n", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.problems:
        problem = get_problem(name)
        config = load_config(None, ["DEFAULT.train=true", f"TRAIN.problem={name}"])
        settings = config.train_config.eval_settings(1)
        data = problem.load(0)
        shape = (tuple(data.input_shape), data.num_classes)
        points = Encoder(problem.space).sample(args.n, 0)
        predict_costs(problem, points[0], settings, *shape)  # imports and caches, not timed
        built, start = 0, time.perf_counter()
        for params in points:
            try:
                predict_costs(problem, params, settings, *shape)
                built += 1
            except BuildError:
                pass
        ms = 1000 * (time.perf_counter() - start) / len(points)
        print(f"{name}: {ms:.1f} ms a candidate ({built} of {len(points)} build)", flush=True)


if __name__ == "__main__":
    main()

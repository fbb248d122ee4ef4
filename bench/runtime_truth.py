"""Predicted (sparsemod.objectives.tflm) against TFLM's own flash and arena.

For N random networks of each built-in space (digits input shapes), exports each with
``sparsemod.deploy.tflite`` (litert-torch, int8) and checks it there (the tflite-micro
interpreter), and prints predicted / runtime flash (the artifact's bytes) and arena
(``RuntimeReport.memory_bytes``: the smallest arena TFLM runs it in), then per space the
worst error and how many agree within max(1 %, 64 B). The RNN space is refused by the
cost model (litert-torch has no int8 LSTM / GRU): ``--spaces cnn,mlp,rnn`` shows why.
Run: ``python bench/runtime_truth.py --n 30`` (about 10-20 s a network).

``--lut BITS`` checks ``compression = lut`` instead: each network's weights are clustered
to ``2**BITS`` values per output channel, the weights :func:`lut_choice` picks are
compressed with TFLM's own compressor (``sparsemod.deploy.tflite_lut``), and the predicted
figures are :func:`~sparsemod.objectives.tflm_lut.lut_costs`'.
"""

from __future__ import annotations

import argparse
import math
import random

import torch

from sparsemod.builders import BUILDERS
from sparsemod.compress.cluster import cluster_weights
from sparsemod.errors import BuildError, MeasureError
from sparsemod.objectives.runtime import lut_choice
from sparsemod.objectives.tflm import graph_costs
from sparsemod.objectives.tflm_graph import lower
from sparsemod.objectives.tflm_lut import lut_costs

SHAPES = {"cnn": (1, 8, 8), "mlp": (8, 8), "rnn": (8, 8)}


def _sample(space, rng: random.Random) -> dict:
    """A uniformly random point of ``space`` (log-uniform where a parameter says log)."""
    point = {}
    for p in space.parameters:
        if hasattr(p, "values"):
            point[p.name] = rng.choice(list(p.values))
        elif hasattr(p, "low"):
            lo, hi = p.low, p.high
            x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if p.log else rng.uniform(lo, hi)
            point[p.name] = round(x) if isinstance(lo, int) else x
        else:
            point[p.name] = space.reference[p.name]
    return point


def _error(predicted: int, measured: int | None) -> float:
    return float("nan") if not measured else (predicted - measured) / measured


def _agree(predicted: int, measured: int) -> bool:
    return abs(predicted - measured) <= max(0.01 * measured, 64)


def main() -> None:
    """Parse ``--n`` / ``--seed`` / ``--spaces`` and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spaces", default="cnn,mlp")
    parser.add_argument("--lut", type=int, default=0, help="LUT index bits (0: no LUT)")
    args = parser.parse_args()
    from sparsemod.deploy.base import DeployError
    from sparsemod.deploy.tflite import RUNTIME
    from sparsemod.deploy.tflite_lut import compress_lut

    rng = random.Random(args.seed)
    print(
        f"{'space':5} {'#':>3} {'flash pred':>10} {'flash TFLM':>10} {'arena pred':>10} "
        f"{'arena TFLM':>10}"
    )
    for space_name in args.spaces.split(","):
        build, space = BUILDERS[space_name]
        shape = SHAPES[space_name]
        worst = [0.0, 0.0]
        done = agreed = measured = 0
        while done < args.n:
            params = _sample(space(), rng)
            try:
                net = build(params, shape, 10).eval()
            except BuildError:
                continue
            example = torch.randn(1, *shape)
            try:
                if args.lut:
                    cluster_weights(net, args.lut)
                graph = lower(net, example)
                luts = lut_choice(graph, net, args.lut) if args.lut else []
                costs = lut_costs(graph, luts)
                art = RUNTIME.export(net, example, [torch.randn(4, *shape)])
                if args.lut:
                    art = compress_lut(art, args.lut)
                rep = RUNTIME.check(art, [(example, torch.zeros(1, dtype=torch.long))])
                arena = rep.memory_bytes
            except (MeasureError, DeployError) as exc:
                print(f"{space_name:5} {done:3} skipped: {exc}")
                done += 1
                continue
            done += 1
            measured += 1
            ef = _error(costs.flatbuffer_bytes, art.size_bytes)
            ea = _error(costs.arena_bytes, arena)
            worst = [max(worst[0], abs(ef)), max(worst[1], abs(ea))]
            ok = _agree(costs.flatbuffer_bytes, art.size_bytes) and _agree(costs.arena_bytes, arena)
            agreed += ok
            print(
                f"{space_name:5} {done:3} {costs.flatbuffer_bytes:10} {art.size_bytes:10} "
                f"{costs.arena_bytes:10} {arena:10}"
                + (f"  {len(luts)} LUT, dense {graph_costs(graph).flatbuffer_bytes}" * bool(luts))
                + ("" if ok else "  (off)"),
                flush=True,
            )
        if measured:
            print(
                f"{space_name:5} worst |error|: flash {worst[0]:.2%}, arena {worst[1]:.2%}; "
                f"{agreed}/{measured} within max(1 %, 64 B)",
                flush=True,
            )


if __name__ == "__main__":
    main()

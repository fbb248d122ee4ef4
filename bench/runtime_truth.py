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

``--runtime executorch`` checks ``runtime = executorch`` instead: the predicted ``.pte``
bytes and planned memory (:func:`~sparsemod.objectives.executorch_cost.executorch_costs`)
against ExecuTorch 1.5's Cortex-M export (``sparsemod.deploy.executorch``) and the memory
plan its own deserialiser reads from the file.
"""

from __future__ import annotations

import argparse
import math
import random

import torch

from sparsemod.builders import BUILDERS
from sparsemod.compress.cluster import cluster_weights
from sparsemod.compress.rnn_int8 import is_static_rnn
from sparsemod.errors import BuildError, MeasureError
from sparsemod.objectives.executorch_cost import executorch_costs
from sparsemod.objectives.runtime import lut_choice
from sparsemod.objectives.tflm import graph_costs
from sparsemod.objectives.tflm_graph import lower
from sparsemod.objectives.tflm_gru import gru_costs, lower_gru
from sparsemod.objectives.tflm_lstm import lower_lstm, lstm_costs
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


def _tflm(net, example, shape, bits: int) -> tuple[int, int, int, int, str]:
    """Predicted and TFLM's flash and arena (``bits``: LUT index bits, 0 for none)."""
    from sparsemod.deploy.tflite import RUNTIME
    from sparsemod.deploy.tflite_lut import compress_lut

    if bits:
        cluster_weights(net, bits)
    if is_static_rnn(net):
        lstm = isinstance(net[0].rnn, torch.nn.LSTM)
        graph = (lower_lstm if lstm else lower_gru)(net, example)
        costs, luts = (lstm_costs if lstm else gru_costs)(graph), []
    else:
        graph = lower(net, example)
        luts = lut_choice(graph, net, bits) if bits else []
        costs = lut_costs(graph, luts)
    art = RUNTIME.export(net, example, [torch.randn(4, *shape)])
    if bits:
        art = compress_lut(art, bits)
    rep = RUNTIME.check(art, [(example, torch.zeros(1, dtype=torch.long))])
    note = f"  {len(luts)} LUT, dense {graph_costs(graph).flatbuffer_bytes}" if luts else ""
    return costs.flatbuffer_bytes, art.size_bytes, costs.arena_bytes, rep.memory_bytes, note


def _executorch(net, example, shape, _bits: int) -> tuple[int, int, int, int, str]:
    """Predicted and ExecuTorch's .pte bytes and planned memory (Cortex-M program)."""
    from sparsemod.deploy import get_runtime
    from sparsemod.deploy.executorch import plan

    costs = executorch_costs(net, example)
    art = get_runtime("executorch").export(net, example, [torch.randn(4, *shape)])
    planned = sum(plan(art.data)["buffers"])
    note = f"  scratch {costs.parts['scratch']}" * bool(costs.parts["scratch"])
    return costs.pte_bytes, art.size_bytes, costs.planned_bytes, planned, note


def main() -> None:
    """Parse the arguments and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spaces", default="cnn,mlp")
    parser.add_argument("--lut", type=int, default=0, help="LUT index bits (0: no LUT)")
    parser.add_argument("--runtime", choices=("tflm", "executorch"), default="tflm")
    args = parser.parse_args()
    from sparsemod.deploy.base import DeployError

    measure = _tflm if args.runtime == "tflm" else _executorch
    rng = random.Random(args.seed)
    what = ("flash", "arena") if args.runtime == "tflm" else ("pte", "planned")
    print(
        f"{'space':5} {'#':>3} {what[0] + ' pred':>12} {what[0] + ' runtime':>12} "
        f"{what[1] + ' pred':>12} {what[1] + ' runtime':>12}"
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
                flash, file, memory, runtime_memory, note = measure(net, example, shape, args.lut)
            except (MeasureError, DeployError) as exc:
                print(f"{space_name:5} {done:3} skipped: {exc}")
                done += 1
                continue
            done += 1
            measured += 1
            ef, ea = _error(flash, file), _error(memory, runtime_memory)
            worst = [max(worst[0], abs(ef)), max(worst[1], abs(ea))]
            ok = _agree(flash, file) and _agree(memory, runtime_memory)
            agreed += ok
            print(
                f"{space_name:5} {done:3} {flash:12} {file:12} {memory:12} {runtime_memory:12}"
                + note + ("" if ok else "  (off)"),
                flush=True,
            )
        if measured:
            print(
                f"{space_name:5} worst |error|: {what[0]} {worst[0]:.2%}, {what[1]} "
                f"{worst[1]:.2%}; {agreed}/{measured} within max(1 %, 64 B)",
                flush=True,
            )


if __name__ == "__main__":
    main()

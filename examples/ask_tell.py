"""sparsemod's search around your own training and your own latency measurement.

Nothing here is sparsemod's but the :class:`sparsemod.Study`: the space, the network, the
training loop, the size count and the latency measurement are the user's. The study is
told each trial's error and measured latency; the model size and a latency model are a
cost function of the parameters alone, so the study knows them before training and never
proposes a network over the flash limit.

    python examples/ask_tell.py --store sqlite:///results/ask_tell.db --name mine
    python examples/ask_tell.py --store sqlite:///results/ask_tell.db --name mine  # again:
        # the study is loaded by name and goes on where it stopped (even after kill -9)
"""

from __future__ import annotations

import argparse
import time

import torch
from sklearn.datasets import load_digits
from torch import nn

from sparsemod import SearchSpace, Study
from sparsemod.space import FloatParam, IntParam, choice

SPACE = SearchSpace(
    (
        IntParam("hidden", 4, 128, log=True),
        IntParam("layers", 1, 3),
        FloatParam("lr", 1e-3, 1e-1, log=True),
        choice("activation", ["relu", "tanh"]),
    )
)
FLASH = 6 * 1024  # bytes the weights may take on the board


def network(p: dict) -> nn.Module:
    """The user's own network: an MLP on the 64 pixels of an 8x8 digit."""
    layers, width = [], 64
    act = nn.ReLU if p["activation"] == "relu" else nn.Tanh
    for _ in range(p["layers"]):
        layers += [nn.Linear(width, p["hidden"]), act()]
        width = p["hidden"]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def costs(p: dict) -> dict[str, float]:
    """Known before training: the exact int8 size (1 B a weight, 4 B an int32 bias) and
    a latency model (a few ns a multiply-accumulate, plus a fixed call cost); the study
    ranks trials by the latency measured and told, and chooses arms by the model."""
    widths = [64] + [p["hidden"]] * p["layers"] + [10]
    macs = sum(a * b for a, b in zip(widths, widths[1:]))
    return {
        "model_size_bytes": float(macs + 4 * sum(widths[1:])),
        "latency_s": 5e-6 + 2e-9 * macs,
    }


def train_and_score(p: dict, data: tuple, epochs: int, seed: int) -> tuple[float, nn.Module]:
    """The user's own training loop; returns the validation error and the network."""
    x_train, y_train, x_val, y_val = data
    torch.manual_seed(seed)
    net = network(p)
    opt = torch.optim.Adam(net.parameters(), lr=p["lr"])
    for _ in range(epochs):
        for i in range(0, len(x_train), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x_train[i : i + 64]), y_train[i : i + 64]).backward()
            opt.step()
    with torch.no_grad():
        error = (net(x_val).argmax(1) != y_val).float().mean().item()
    return error, net


def measured_latency(net: nn.Module) -> float:
    """The user's measurement (here this CPU, one sample; on a board: its timer)."""
    x = torch.zeros(1, 64)
    with torch.no_grad():
        for _ in range(5):
            net(x)
        t0 = time.perf_counter()
        for _ in range(50):
            net(x)
    return (time.perf_counter() - t0) / 50


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="sqlite://", help="store URL (default: in memory)")
    ap.add_argument("--name", default="ask_tell", help="the study's name in the store")
    ap.add_argument("--sobol", type=int, default=8, help="quasi-random trials")
    ap.add_argument("--gp", type=int, default=12, help="GP trials")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val = order[:1200], order[1200:1500]  # the rest stays out, as a test split would
    data = (x[train], y[train], x[val], y[val])

    objectives = ("error", "model_size_bytes", "latency_s")
    study = Study(
        SPACE, objectives, costs, store=args.store, name=args.name,
        phases={"sobol": args.sobol, "gp": args.gp}, batch_size=2,
        constraints={"model_size_bytes": FLASH}, ref_point=[1.0, FLASH, 1e-3],
        load_if_exists=True,  # the second run goes on where the first stopped
    )  # fmt: skip
    print(f"study {args.name!r}: {len(study.trials)} trials so far")
    # the trials asked before a kill, then new ones until every phase has spent its budget
    while trials := study.pending() or study.ask(2):
        for t in trials:
            error, net = train_and_score(t.params, data, args.epochs, seed=t.index)
            study.tell(t, {"error": error, "latency_s": measured_latency(net)})
            print(
                f"trial {t.index} ({t.phase}): {t.params} -> error {error:.3f}, "
                f"{t.value('model_size_bytes'):.0f} B, {t.value('latency_s') * 1e6:.0f} us"
            )
    print(f"front ({len(study.pareto())} of {len(study.trials)}), HV {study.hypervolume():.4f}:")
    frame = study.trials_frame()
    print(frame[frame["pareto"]][["index", *SPACE.names, *objectives]].to_string(index=False))


if __name__ == "__main__":
    main()

"""The lottery-ticket experiment (Frankle & Carbin) on the embedded 8x8 digits.

Two networks of the seed experiment, scaled to 8x8 inputs: LeNet 300-100 (an MLP with
hidden layers of 300 and 100 units over the 64 pixels) and Conv-2 (conv 64-64, max pool,
fully connected 256-256-10). Each is trained dense, then pruned by iterative magnitude
pruning (IMP): every round removes 20 % of the remaining weights (globally, smallest
magnitude first), rewinds the survivors to their initial values and retrains. The control
of every round is a *random re-initialisation* of the same mask, trained the same way.

Writes, under ``results/lottery_ticket/`` (or ``--out``):

* ``rounds.csv``: per network, seed and round: weights remaining, ticket validation and
  test accuracy, ticket loss, re-init validation and test accuracy, re-init loss;
* ``histories.csv``: every epoch of every training (loss, validation accuracy, sparsity);
* ``accuracy.png``: test accuracy against weights remaining, ticket vs random re-init.

Run ``python examples/lottery_ticket/run.py`` (ten rounds, ten epochs a training, two
seeds: about two minutes on two idle CPU cores; ``--seeds 3`` for three) or add
``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from sparsemod.compress import apply_masks
from sparsemod.compress.context import state_copy
from sparsemod.compress.lottery import prune_round, rewind, schedule
from sparsemod.compress.masks import count_weights
from sparsemod.data import Splits, load_digits
from sparsemod.train import TrainSettings, accuracy, seeded, train


def lenet_300_100() -> nn.Module:
    """LeNet 300-100 over the 64 pixels of a digit."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 300),
        nn.ReLU(),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.Linear(100, 10),
    )


def conv2() -> nn.Module:
    """Conv-2: two 3x3 convs of 64 filters, 2x2 max pool, fully connected 256-256-10."""
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 4 * 4, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


# (builder, Adam learning rate): the seed's rates, 1.2e-3 for LeNet and 2e-4 for Conv-2.
NETWORKS: dict[str, tuple[Callable[[], nn.Module], float]] = {
    "lenet300-100": (lenet_300_100, 1.2e-3),
    "conv2": (conv2, 2e-4),
}
FIELDS = [
    "network",
    "seed",
    "round",
    "weights_remaining",
    "ticket_val_acc",
    "ticket_test_acc",
    "ticket_loss",
    "reinit_val_acc",
    "reinit_test_acc",
    "reinit_loss",
]


def _fit(
    model: nn.Module, data: Splits, settings: TrainSettings, log: list[dict[str, Any]], **tags: Any
) -> tuple[float, float, float]:
    """Train, log every epoch; (final loss, validation accuracy, test accuracy)."""
    total, kept = count_weights(model)
    records = train(model, data, settings)
    for r in records:
        log.append(
            {**tags, "epoch": r.epoch, "loss": r.loss, "val_accuracy": r.val_accuracy}
            | {"sparsity": 1 - kept / total}
        )
    return records[-1].loss, records[-1].val_accuracy, accuracy(model, data.test)


def run_network(
    name: str, seed: int, data: Splits, rounds: int, epochs: int, device: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """IMP with rewinding to init, and the random re-init control, for one network."""
    build, lr = NETWORKS[name]
    settings = TrainSettings(epochs, batch_size=64, lr=lr, device=device, seed=seed)
    with seeded(seed):
        model = build()
    init = state_copy(model)
    log: list[dict[str, Any]] = []
    loss, val, test = _fit(model, data, settings, log, network=name, seed=seed, round=0)
    total, _ = count_weights(model)
    rows = [
        dict(
            network=name,
            seed=seed,
            round=0,
            weights_remaining=1.0,
            ticket_val_acc=val,
            ticket_test_acc=test,
            ticket_loss=loss,
            reinit_val_acc=val,
            reinit_test_acc=test,
            reinit_loss=loss,
        )
    ]
    # 20 % of the remaining weights a round: round r keeps round(total * 0.8 ** r).
    counts = schedule(total, 0.8**rounds, rounds=rounds)
    for r, keep in enumerate(counts, start=1):
        masks = prune_round(model, keep)
        rewind(model, init, masks)
        ticket = _fit(model, data, settings, log, network=name, seed=seed, round=r, run="ticket")
        with seeded(10_000 + 100 * seed + r):
            control = build()
        apply_masks(control, masks)
        reinit = _fit(control, data, settings, log, network=name, seed=seed, round=r, run="reinit")
        rows.append(
            dict(
                network=name,
                seed=seed,
                round=r,
                weights_remaining=keep / total,
                ticket_val_acc=ticket[1],
                ticket_test_acc=ticket[2],
                ticket_loss=ticket[0],
                reinit_val_acc=reinit[1],
                reinit_test_acc=reinit[2],
                reinit_loss=reinit[0],
            )
        )
        print(
            f"{name:13s} seed {seed} round {r:2d}: {100 * keep / total:5.1f} % weights, "
            f"ticket test {ticket[2]:.3f}, re-init test {reinit[2]:.3f}",
            flush=True,
        )
    return rows, log


def _mean_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    table: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        table.setdefault((row["network"], row["round"]), []).append(row)
    out = []
    for (name, r), group in table.items():
        n = len(group)
        out.append(
            {
                "network": name,
                "round": r,
                "weights_remaining": group[0]["weights_remaining"],
                "ticket_test_acc": sum(g["ticket_test_acc"] for g in group) / n,
                "reinit_test_acc": sum(g["reinit_test_acc"] for g in group) / n,
            }
        )
    return out


def _plot(table: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({t["network"] for t in table})
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        rows = [t for t in table if t["network"] == name]
        x = [100 * t["weights_remaining"] for t in rows]
        ax.plot(x, [t["ticket_test_acc"] for t in rows], "o-", label="winning ticket (rewind)")
        ax.plot(x, [t["reinit_test_acc"] for t in rows], "s--", label="random re-init")
        ax.set_xscale("log")
        ax.set_xticks([100, 50, 20, 10], ["100", "50", "20", "10"])
        ax.invert_xaxis()
        ax.set_xlabel("weights remaining (%)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{name} on digits (IMP, 20 % a round)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds, 3 epochs, one seed")
    parser.add_argument("--rounds", type=int, default=10, help="IMP rounds (default 10)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per training (10)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds averaged (2)")
    parser.add_argument("--networks", default="lenet300-100,conv2", help="comma separated")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (cpu)")
    parser.add_argument("--out", default="results/lottery_ticket", help="output folder")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.epochs, args.seeds = 3, 3, 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_digits(0)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    log: list[dict[str, Any]] = []
    for name in args.networks.split(","):
        for seed in range(args.seeds):
            r, h = run_network(name, seed, data, args.rounds, args.epochs, args.device)
            rows += r
            log += h
    with open(out / "rounds.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    keys = ["network", "seed", "round", "run", "epoch", "loss", "val_accuracy", "sparsity"]
    with open(out / "histories.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, keys, restval="dense")
        writer.writeheader()
        writer.writerows(log)
    table = _mean_table(rows)
    _plot(table, out / "accuracy.png")
    print(f"\nmean test accuracy over {args.seeds} seed(s) ({time.perf_counter() - start:.0f} s)")
    print(f"{'network':13s} {'round':>5s} {'weights %':>9s} {'ticket':>7s} {'re-init':>7s}")
    for t in table:
        print(
            f"{t['network']:13s} {t['round']:5d} {100 * t['weights_remaining']:9.1f} "
            f"{t['ticket_test_acc']:7.3f} {t['reinit_test_acc']:7.3f}"
        )
    print(f"wrote {out / 'rounds.csv'}, {out / 'histories.csv'}, {out / 'accuracy.png'}")


if __name__ == "__main__":
    main()

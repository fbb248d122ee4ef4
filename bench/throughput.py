"""Training throughput of ``sparsemod.train.train`` against a bare PyTorch loop.

Both sides train the same CNN, from the same initial weights, on the digits with the same batch
size and epochs; runs are interleaved and repeated, and the median samples per second is
reported. Only the training passes are timed: validation is excluded on both sides (sparsemod
reports the training-pass time in ``EpochRecord.seconds``).

Usage::

    python bench/throughput.py [--epochs 3] [--batch-size 64] [--repeats 7] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from sparsemod.data import Splits, load_digits
from sparsemod.train import TrainSettings, resolve_device, seeded, train


def make_cnn() -> nn.Module:
    """The benchmark network, for ``(1, 8, 8)`` inputs and ten classes."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Dropout(0.1),
        nn.Linear(64, 10),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(
    model: nn.Module, data: TensorDataset, epochs: int, batch_size: int, device: torch.device
) -> float:
    """The textbook loop; returns training samples per second."""
    model.to(device)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    _sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
    _sync(device)
    return epochs * len(data) / (time.perf_counter() - start)


def sparsemod_loop(
    model: nn.Module, splits: Splits, epochs: int, batch_size: int, device: torch.device
) -> float:
    """sparsemod's trainer; returns training samples per second (validation excluded)."""
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, device=str(device))
    history = train(model, splits, settings)
    return sum(r.samples for r in history) / sum(r.seconds for r in history)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)

    splits = load_digits(seed=0)
    with seeded(0):
        initial = make_cnn()
    # One untimed epoch each, so that one-off costs (allocator, kernel choice) hit neither side.
    bare_loop(copy.deepcopy(initial), splits.train, 1, args.batch_size, device)
    sparsemod_loop(copy.deepcopy(initial), splits, 1, args.batch_size, device)

    epochs, batch = args.epochs, args.batch_size
    rates: dict[str, list[float]] = {"bare PyTorch loop": [], "sparsemod.train": []}
    for repeat in range(args.repeats):
        # Interleaved, so drifts in machine load touch both sides alike.
        with seeded(repeat):
            rates["bare PyTorch loop"].append(
                bare_loop(copy.deepcopy(initial), splits.train, epochs, batch, device)
            )
        rates["sparsemod.train"].append(
            sparsemod_loop(copy.deepcopy(initial), splits, epochs, batch, device)
        )

    baseline = statistics.median(rates["bare PyTorch loop"])
    print(
        f"digits, {len(splits.train)} training samples, CNN, {args.epochs} epochs, "
        f"batch size {args.batch_size}, device {device}, median of {args.repeats} runs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    print("| method | samples/s | ratio |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / baseline:.2f}x |")


if __name__ == "__main__":
    main()

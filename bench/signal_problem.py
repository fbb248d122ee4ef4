"""``signal1d``: a synthetic 1-D signal classification problem and its 1-D CNN space.

The data are generated here (nothing is downloaded, no public dataset): five classes of
one-channel signals of :data:`LENGTH` samples, :data:`SIZES` = 1500 train / 500
validation / 500 test examples, every class exactly a fifth of each split. The window is
one time unit long, so a frequency is in cycles per window (FFT bin index):

====  ===========  ==========================================================  =========
y     name         signal                                                      band
====  ===========  ==========================================================  =========
0     sine         ``sin(2 pi f t + phase)``                                   4 - 8
1     square       ``tanh(k sin(...)) / tanh(k)``, ``k`` in [1, 6]: a soft     4 - 8
                   square, near a sine for small ``k``
2     sawtooth     the sum of the first 2-5 harmonics ``sin(n x) / n`` (a      4 - 8
                   band-limited sawtooth, near a sine with 2 harmonics)
3     chirp        a linear sweep from ``f0`` to ``f1`` (up or down), both in  3 - 14
                   the band, ``|f1 - f0| >= 5``
4     burst        a sine in the band under a Gaussian window of 6-16 samples  10 - 20
                   (std) centred anywhere in the middle 3/4 of the window
====  ===========  ==========================================================  =========

Every example gets a random amplitude (0.5 - 1.5), phase, a circular time shift, a slow
baseline drift (under 1.5 cycles, amplitude up to 0.5) and white Gaussian noise of standard
deviation 0.3 - 1.0. The three periodic classes share one band and differ only in their
harmonics, which the noise partly hides: the classes overlap, so no network is perfect.
Measured through :func:`sparsemod.evaluate.evaluate` (4 epochs, int8, seed 0): a 3-block
network (32/64/64 channels, kernel 7) reaches 89 % validation accuracy, the 2-block
reference 75 %, a 1-block one of 4 channels 23 %. The generator is deterministic for a
seed (:func:`make_signals`); all three splits take about 0.3 s.

The network (:func:`build_signal_cnn`) is 1 to 3 blocks of ``Conv1d`` ("same" padding,
one kernel size for all) + ``BatchNorm1d`` + ``ReLU`` + optional ``MaxPool1d(2)``, then
one hidden fully connected layer and the output layer. sparsemod's default cost model
(``runtime = tflm``) models ``Conv1d`` and the 1-D pools as the 2-D ops over a height-1
image, which is how TensorFlow Lite Micro runs them, so the network uses the 1-D layers
directly (checked: :func:`sparsemod.evaluate.predict_costs` and ``evaluate`` run on it).

The space has 11 parameters: ``n_conv`` (1-3), per block ``ch1..ch3`` (4-64, log) and
``pool1..pool3`` ("max" / "none"), ``kernel`` (3, 5, 7), ``fc_units`` (8-128, log), ``lr``
(1e-4 - 1e-1, log) and ``keep_ratio`` (0.05 - 1). ``ch2`` / ``pool2`` are active when
``n_conv`` is 2 or 3, ``ch3`` / ``pool3`` when it is 3.

Use it as ``problem = bench.signal_problem:signal_problem`` (with the repository root on
the path) or, in ``bench/search_quality.py``, as ``--problems signal1d``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sparsemod.data import Splits
from sparsemod.errors import BuildError, ConfigError
from sparsemod.problems import Problem
from sparsemod.space import FloatParam, IntParam, SearchSpace, choice

LENGTH = 128
CLASSES = ("sine", "square", "sawtooth", "chirp", "burst")
BANDS = {  # (low, high) frequency of each class, in cycles per window
    "sine": (4.0, 8.0),
    "square": (4.0, 8.0),
    "sawtooth": (4.0, 8.0),
    "chirp": (3.0, 14.0),
    "burst": (10.0, 20.0),
}
SIZES = {"train": 1500, "val": 500, "test": 500}
MAX_CONV = 3
POOLS = ("max", "none")

_REFERENCE: dict[str, Any] = {
    "n_conv": 2,
    "ch1": 16,
    "pool1": "max",
    "ch2": 32,
    "pool2": "max",
    "ch3": 32,
    "pool3": "max",
    "kernel": 5,
    "fc_units": 32,
    "lr": 0.003,
    "keep_ratio": 0.5,
}


# ----------------------------------------------------------------------------- data


def _clean(kind: str, rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """One noiseless example of ``kind``, unit amplitude, before the time shift."""
    lo, hi = BANDS[kind]
    phase = rng.uniform(0, 2 * np.pi)
    if kind in ("sine", "square", "sawtooth"):
        x = 2 * np.pi * rng.uniform(lo, hi) * t + phase
        if kind == "sine":
            return np.sin(x)
        if kind == "square":
            k = rng.uniform(2.5, 8.0)
            return np.tanh(k * np.sin(x)) / np.tanh(k)
        harmonics = int(rng.integers(3, 7))
        s = sum(np.sin(n * x) / n for n in range(1, harmonics + 1))
        return s / np.abs(s).max()
    if kind == "chirp":
        while True:
            f0, f1 = rng.uniform(lo, hi, size=2)
            if abs(f1 - f0) >= 5.0:
                break
        # instantaneous frequency f0 + (f1 - f0) t over t in [0, 1)
        return np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) * t**2) + phase)
    # burst
    centre = rng.uniform(0.125, 0.875)
    width = rng.uniform(6, 16) / len(t)
    envelope = np.exp(-0.5 * ((t - centre) / width) ** 2)
    return envelope * np.sin(2 * np.pi * rng.uniform(lo, hi) * t + phase)


def make_signals(
    n_per_class: int, seed: int, noise: bool = True, length: int = LENGTH
) -> tuple[np.ndarray, np.ndarray]:
    """``n_per_class`` examples of each class, shuffled: ``x`` (n, 1, length) float32, ``y``.

    Deterministic for ``seed``. ``noise=False`` gives the clean signals (unit amplitude, no
    drift, no noise, no time shift), for checking the classes' frequencies by hand.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length) / length
    n = n_per_class * len(CLASSES)
    x = np.empty((n, length), dtype=np.float64)
    y = np.repeat(np.arange(len(CLASSES)), n_per_class)
    for i, label in enumerate(y):
        s = _clean(CLASSES[label], rng, t)
        if noise:
            s = rng.uniform(0.5, 1.5) * np.roll(s, int(rng.integers(length)))
            drift = rng.uniform(0, 0.5) * np.sin(
                2 * np.pi * rng.uniform(0.2, 1.5) * t + rng.uniform(0, 2 * np.pi)
            )
            s = s + drift + rng.normal(0, rng.uniform(0.2, 0.7), length)
        x[i] = s
    order = rng.permutation(n)
    return x[order].astype(np.float32)[:, None, :], y[order].astype(np.int64)


def load_signals(seed: int = 0) -> Splits:
    """Train / val / test of :data:`SIZES`, each class balanced, deterministic for ``seed``.

    Each split is generated on its own stream (seeded from ``seed`` and the split), so the
    three never share an example.
    """
    parts = []
    for k, size in enumerate(SIZES.values()):
        x, y = make_signals(size // len(CLASSES), seed=seed * 1000 + k)
        parts.append(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)))
    return Splits(*parts, input_shape=(1, LENGTH), num_classes=len(CLASSES), name="signal1d")


# ----------------------------------------------------------------------------- network


def signal_space() -> SearchSpace:
    """The 1-D CNN space (11 parameters; see the module docstring)."""
    params = [IntParam("n_conv", 1, MAX_CONV)]
    for b in range(1, MAX_CONV + 1):
        used = None if b == 1 else {"n_conv": list(range(b, MAX_CONV + 1))}
        params += [
            IntParam(f"ch{b}", 4, 64, log=True, active_if=used),
            choice(f"pool{b}", POOLS, active_if=used),
        ]
    params += [
        choice("kernel", [3, 5, 7]),
        IntParam("fc_units", 8, 128, log=True),
        FloatParam("lr", 1e-4, 1e-1, log=True),
        FloatParam("keep_ratio", 0.05, 1.0),
    ]
    return SearchSpace(tuple(params), dict(_REFERENCE))


def build_signal_cnn(
    params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Sequential:
    """Build the 1-D CNN of one point of :func:`signal_space`.

    Returns:
        An ``nn.Sequential`` with children ``c1_conv``, ``c1_bn``, ``c1_relu``,
        ``c1_pool`` (when ``pool1`` is "max"), ..., ``flatten``, ``fc``, ``fc_relu``,
        ``out``. Blocks after ``n_conv`` are ignored, as are ``lr`` and ``keep_ratio``.

    Raises:
        ConfigError: ``params`` are not a point of the space, or ``num_classes`` < 1.
        BuildError: ``input_shape`` is not ``(channels, length)``, or a pooling would see
            fewer than 2 samples.
    """
    p = signal_space().validate(params)
    shape = tuple(input_shape)
    if len(shape) != 2 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise BuildError(f"the 1-D CNN needs inputs shaped (channels, length), got {shape}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    in_ch, length = shape
    k = int(p["kernel"])
    layers: list[tuple[str, nn.Module]] = []
    for b in range(1, int(p["n_conv"]) + 1):
        out_ch = int(p[f"ch{b}"])
        layers += [
            (f"c{b}_conv", nn.Conv1d(in_ch, out_ch, k, padding=k // 2)),
            (f"c{b}_bn", nn.BatchNorm1d(out_ch)),
            (f"c{b}_relu", nn.ReLU()),
        ]
        in_ch = out_ch
        if p[f"pool{b}"] == "max":
            if length < 2:
                raise BuildError(
                    f"block {b} pooling: the feature map has length {length}, too short to "
                    f"pool (input length {shape[1]})"
                )
            layers.append((f"c{b}_pool", nn.MaxPool1d(2)))
            length //= 2
    units = int(p["fc_units"])
    layers += [
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(in_ch * length, units)),
        ("fc_relu", nn.ReLU()),
        ("out", nn.Linear(units, num_classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


def signal_problem() -> Problem:
    """The ``signal1d`` problem: the generated signals and the 1-D CNN space."""
    return Problem(
        "signal1d",
        signal_space(),
        build_signal_cnn,
        load_signals,
        description="1-D CNN on generated 5-class signals (sine/square/sawtooth/chirp/burst)",
    )

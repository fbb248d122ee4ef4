"""What fixed seeds gave before the redesign (issue 13), trial by trial.

Each row: (index, phase, parent, status, params digest, error, model size, working memory,
FLOPs, on the Pareto set). PROC, CNN and RNN were captured at commit c493a91 from the
searches of tests/test_behaviour.py (which now run them under ``runtime = ideal`` and the
budgets of then). DEFAULT is the default ``python main.py`` since ``runtime = tflm`` became
the default (issue 15): sizes and working memory are TFLM's flatbuffer and arena, within
config.ini's 64 KB / 8 KB. A change that is meant to change what a search finds updates
these rows in the same commit and says why.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

_META = (
    "index", "phase", "parent", "status", "failure_reason", "error", "model_size_bytes",
    "working_memory_bytes", "flops", "latency_s", "accuracy_val", "train_seconds", "is_pareto",
)  # fmt: skip


def rows_of(trials_csv: Path) -> list[tuple]:
    """The rows of a search's trials.csv in the form of the tables below."""
    frame = pd.read_csv(trials_csv)
    params = [c for c in frame.columns if c not in _META]
    rows = []
    for _, r in frame.iterrows():
        values = {c: (None if pd.isna(r[c]) else r[c]) for c in params}
        digest = json.dumps(values, sort_keys=True, default=str).encode()
        rows.append(
            (
                int(r["index"]),
                r["phase"],
                None if pd.isna(r["parent"]) else int(r["parent"]),
                r["status"],
                hashlib.sha256(digest).hexdigest()[:10],
                float(f"{r['error']:.12g}"),
                int(r["model_size_bytes"]),
                int(r["working_memory_bytes"]),
                int(r["flops"]),
                bool(r["is_pareto"]),
            )
        )
    return rows


PROC = [
    (0, "sobol", None, "completed", "2e17712fe0", 0.603703703704, 11816, 210, 38886, False),
    (1, "sobol", None, "completed", "ffff3bb673", 0.114814814815, 18656, 460, 30664, False),
    (2, "sobol", None, "completed", "6bf28675f6", 0.662962962963, 19054, 319, 42672, False),
    (3, "sobol", None, "completed", "c3edbc1305", 0.133333333333, 1229, 105, 6068, False),
    (4, "gp", None, "completed", "2dc5b9b649", 0.0703703703704, 948, 83, 2812, True),
    (5, "gp", None, "completed", "7c72475617", 0.151851851852, 1927, 87, 3404, False),
    (6, "morph", 4, "completed", "ff73de7325", 0.0962962962963, 948, 83, 2812, False),
    (7, "morph", 4, "completed", "787d5cdb39", 0.0777777777778, 815, 80, 2368, True),
]
CNN = [
    (0, "sobol", None, "completed", "e458df8494", 0.6, 13311, 384, 119390, False),
    (1, "sobol", None, "completed", "ebd7ed7966", 0.785185185185, 4906, 1536, 509872, False),
    (2, "sobol", None, "completed", "c2cee107de", 0.9, 4863, 768, 156322, False),
    (3, "sobol", None, "completed", "843dc493ec", 0.0703703703704, 4818, 512, 31360, True),
    (4, "gp", None, "completed", "e0b73283fe", 0.766666666667, 286, 128, 3608, True),
    (5, "gp", None, "completed", "b26240d66a", 0.22962962963, 1458, 560, 24640, True),
    (6, "morph", 3, "completed", "d8aa1f5345", 0.0962962962963, 3470, 384, 22400, True),
    (7, "morph", 4, "completed", "a48a4b1fbf", 0.792592592593, 310, 128, 3656, False),
]
RNN = [
    (0, "sobol", None, "completed", "7fcb3bdeaa", 0.377777777778, 7817, 1744, 201004, False),
    (1, "sobol", None, "completed", "28a3a894e5", 0.822222222222, 25725, 3424, 407264, False),
    (2, "sobol", None, "completed", "c7ae8e7d73", 0.892592592593, 2746, 696, 21868, False),
    (3, "sobol", None, "completed", "4757834253", 0.592592592593, 5130, 1536, 82560, False),
    (4, "gp", None, "completed", "f708e70c8f", 0.544444444444, 1622, 640, 16544, False),
    (5, "gp", None, "completed", "5138bfad0c", 0.448148148148, 953, 576, 8352, False),
    (6, "morph", 0, "completed", "623d0fa72d", 0.3, 3632, 1496, 77996, True),
    (7, "morph", 5, "completed", "ea2469e7d0", 0.348148148148, 749, 544, 6304, True),
]
DEFAULT = [
    (0, "sobol", None, "completed", "e458df8494", 0.592592592593, 38024, 7296, 233966, False),
    (1, "sobol", None, "completed", "843dc493ec", 0.0296296296296, 9704, 2992, 40320, False),
    (2, "sobol", None, "completed", "9a7cf4dc46", 0.662962962963, 16648, 4432, 135356, False),
    (3, "sobol", None, "completed", "7358caffa6", 0.255555555556, 10312, 4832, 79360, False),
    (4, "sobol", None, "completed", "118ba04f45", 0.318518518519, 26104, 5392, 268928, False),
    (5, "sobol", None, "completed", "a0064e44f0", 0.566666666667, 21440, 7968, 42644, False),
    (6, "gp", None, "completed", "d8aa1f5345", 0.0444444444444, 7624, 2576, 26880, True),
    (7, "gp", None, "completed", "d49304d4ee", 0.0703703703704, 5664, 2720, 31680, True),
    (8, "gp", None, "completed", "60cacccd69", 0.0518518518519, 6240, 2416, 17920, True),
    (9, "gp", None, "completed", "38c024fa67", 0.148148148148, 5216, 2864, 21120, False),
    (10, "gp", None, "completed", "0a6000b600", 0.0555555555556, 6176, 2416, 9728, True),
    (11, "gp", None, "completed", "0098f5bea2", 0.037037037037, 9648, 2896, 142080, True),
    (12, "gp", None, "completed", "f986e8003c", 0.0666666666667, 7200, 2832, 30976, False),
    (13, "gp", None, "completed", "2c13cb6d6f", 0.037037037037, 12008, 3904, 181632, False),
    (14, "gp", None, "completed", "05a2006752", 0.0777777777778, 8192, 2864, 11648, False),
    (15, "gp", None, "completed", "37d59c751c", 0.148148148148, 4536, 2656, 5888, True),
    (16, "gp", None, "completed", "230601f53c", 0.0259259259259, 9704, 2992, 40320, True),
    (17, "gp", None, "completed", "d4984b1d2e", 0.0259259259259, 9704, 2992, 40320, True),
    (18, "morph", 16, "completed", "fabc1a12ba", 0.0259259259259, 9704, 2992, 40320, True),
    (19, "morph", 16, "completed", "a07d62b47c", 0.0259259259259, 9704, 2992, 40320, True),
    (20, "morph", 18, "completed", "02028f82f0", 0.0259259259259, 13168, 3664, 62720, False),
    (21, "morph", 7, "completed", "c4f97a767d", 0.0481481481481, 41464, 5712, 90708, False),
    (22, "morph", 19, "completed", "1f4d352292", 0.0259259259259, 13168, 3664, 62720, False),
    (23, "morph", 17, "completed", "8a05a404bf", 0.0296296296296, 13168, 3664, 62720, False),
]

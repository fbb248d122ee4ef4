"""What fixed seeds gave before the redesign (issue 13), trial by trial.

Each row: (index, phase, parent, status, params digest, error, model size, working memory,
FLOPs, on the Pareto set). Captured at commit c493a91 from the searches of
tests/test_behaviour.py and the default ``python main.py``. A change that is meant to
change what a search finds updates these rows in the same commit and says why.
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
    (0, "sobol", None, "completed", "e458df8494", 0.592592592593, 21438, 512, 233966, False),
    (1, "sobol", None, "completed", "c2cee107de", 0.881481481481, 20197, 2688, 1865720, False),
    (2, "sobol", None, "completed", "843dc493ec", 0.0296296296296, 5656, 640, 40320, True),
    (3, "sobol", None, "completed", "9a7cf4dc46", 0.662962962963, 2215, 896, 135356, False),
    (4, "sobol", None, "completed", "b8e79dc514", 0.855555555556, 28903, 2496, 1847088, False),
    (5, "sobol", None, "completed", "7358caffa6", 0.255555555556, 2295, 1792, 79360, False),
    (6, "gp", None, "completed", "d8aa1f5345", 0.0444444444444, 3803, 448, 26880, True),
    (7, "gp", None, "completed", "d49304d4ee", 0.0703703703704, 1705, 720, 31680, True),
    (8, "gp", None, "completed", "38c024fa67", 0.148148148148, 1169, 480, 21120, False),
    (9, "gp", None, "completed", "3c36de688c", 0.407407407407, 399, 384, 10752, True),
    (10, "gp", None, "completed", "05a2006752", 0.0777777777778, 3709, 448, 11648, False),
    (11, "gp", None, "completed", "5293fdbc3c", 0.0481481481481, 3716, 448, 14592, True),
    (12, "gp", None, "completed", "81fd5a132b", 0.0407407407407, 4113, 576, 65664, True),
    (13, "gp", None, "completed", "60cacccd69", 0.0518518518519, 2569, 320, 17920, True),
    (14, "gp", None, "completed", "976ff3de72", 0.0555555555556, 2976, 512, 69120, False),
    (15, "gp", None, "completed", "2c13cb6d6f", 0.037037037037, 5114, 960, 181632, True),
    (16, "gp", None, "completed", "58c61e3c37", 0.0592592592593, 2482, 960, 175872, False),
    (17, "gp", None, "completed", "d5491c4ed8", 0.037037037037, 6958, 960, 439680, False),
    (18, "morph", 15, "completed", "b74924d539", 0.0407407407407, 2482, 960, 175872, True),
    (19, "morph", 16, "completed", "8322b6792c", 0.196296296296, 1938, 1152, 71040, False),
    (20, "morph", 18, "completed", "b66dfc1573", 0.0555555555556, 2126, 960, 134400, True),
    (21, "morph", 18, "completed", "e2fabdb4cc", 0.17037037037, 2045, 768, 100992, False),
    (22, "morph", 2, "completed", "230601f53c", 0.0259259259259, 6166, 640, 40320, True),
    (23, "morph", 13, "completed", "b78746e652", 0.137037037037, 813, 320, 14080, True),
]

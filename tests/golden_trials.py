"""What fixed seeds gave before the redesign (issue 13), trial by trial.

Each row: (index, phase, parent, status, params digest, error, model size, working memory,
FLOPs, on the Pareto set). PROC, CNN and RNN come from the searches of
tests/test_behaviour.py (under ``runtime = ideal`` and the budgets of commit c493a91, where
they were first captured). DEFAULT is the default ``python main.py`` (``runtime = tflm``:
sizes and working memory are TFLM's flatbuffer and arena, within config.ini's 64 KB /
8 KB). A change that is meant to change what a search finds updates these rows in the same
commit and says why.

Last updated by issue 16: the GP encodes inactive parameters at one value, no network is
trained twice, and ``cost_scale`` is ``log`` by default. The Sobol rows are unchanged. In
the old DEFAULT, trials 16, 17 and 18 had different parameters but the same error (to 12
digits), size, memory and FLOPs: by all signs one network trained three times.
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
    (4, "gp", None, "completed", "f1c348ec73", 0.248148148148, 719, 81, 2516, False),
    (5, "gp", None, "completed", "2dc5b9b649", 0.0703703703704, 948, 83, 2812, True),
    (6, "morph", 5, "completed", "787d5cdb39", 0.0777777777778, 815, 80, 2368, True),
    (7, "morph", 4, "completed", "98a795bd92", 0.222222222222, 660, 81, 2516, True),
]
CNN = [
    (0, "sobol", None, "completed", "e458df8494", 0.6, 13311, 384, 119390, False),
    (1, "sobol", None, "completed", "ebd7ed7966", 0.785185185185, 4906, 1536, 509872, False),
    (2, "sobol", None, "completed", "c2cee107de", 0.9, 4863, 768, 156322, False),
    (3, "sobol", None, "completed", "843dc493ec", 0.0703703703704, 4818, 512, 31360, True),
    (4, "gp", None, "completed", "3c36de688c", 0.292592592593, 293, 128, 1600, False),
    (5, "gp", None, "completed", "921c3bead0", 0.866666666667, 644, 128, 3192, False),
    (6, "morph", 4, "completed", "b7fc339a43", 0.203703703704, 278, 128, 1472, True),
    (7, "morph", 4, "completed", "f74bbf411f", 0.807407407407, 219, 128, 1936, True),
]
RNN = [
    (0, "sobol", None, "completed", "7fcb3bdeaa", 0.377777777778, 7817, 1744, 201004, True),
    (1, "sobol", None, "completed", "28a3a894e5", 0.822222222222, 25725, 3424, 407264, False),
    (2, "sobol", None, "completed", "c7ae8e7d73", 0.892592592593, 2746, 696, 21868, False),
    (3, "sobol", None, "completed", "4757834253", 0.592592592593, 5130, 1536, 82560, False),
    (4, "gp", None, "completed", "f708e70c8f", 0.544444444444, 1622, 640, 16544, True),
    (5, "gp", None, "completed", "77782e9665", 0.759259259259, 648, 544, 6304, True),
    (6, "morph", 4, "completed", "c2b8e6f651", 0.585185185185, 872, 576, 8352, True),
    (7, "morph", 0, "completed", "8a59a9295e", 0.455555555556, 4691, 1264, 95844, True),
]
DEFAULT = [
    (0, "sobol", None, "completed", "e458df8494", 0.592592592593, 38024, 7296, 233966, False),
    (1, "sobol", None, "completed", "843dc493ec", 0.0296296296296, 9704, 2992, 40320, True),
    (2, "sobol", None, "completed", "9a7cf4dc46", 0.662962962963, 16648, 4432, 135356, False),
    (3, "sobol", None, "completed", "7358caffa6", 0.255555555556, 10312, 4832, 79360, False),
    (4, "sobol", None, "completed", "118ba04f45", 0.318518518519, 26104, 5392, 268928, False),
    (5, "sobol", None, "completed", "a0064e44f0", 0.566666666667, 21440, 7968, 42644, False),
    (6, "gp", None, "completed", "d49304d4ee", 0.0703703703704, 5664, 2720, 31680, False),
    (7, "gp", None, "completed", "d8aa1f5345", 0.0444444444444, 7624, 2576, 26880, True),
    (8, "gp", None, "completed", "60cacccd69", 0.0518518518519, 6240, 2416, 17920, False),
    (9, "gp", None, "completed", "38c024fa67", 0.148148148148, 5216, 2864, 21120, False),
    (10, "gp", None, "completed", "b78746e652", 0.137037037037, 4600, 2656, 14080, True),
    (11, "gp", None, "completed", "f986e8003c", 0.0666666666667, 7200, 2832, 30976, False),
    (12, "gp", None, "completed", "e73f53b057", 0.0296296296296, 11784, 3376, 53760, False),
    (13, "gp", None, "completed", "0098f5bea2", 0.037037037037, 9648, 2896, 142080, True),
    (14, "gp", None, "completed", "0f20d762dd", 0.0555555555556, 14704, 3456, 42880, False),
    (15, "gp", None, "completed", "4643464d2c", 0.0296296296296, 13168, 3664, 62720, False),
    (16, "gp", None, "completed", "dce9bd55c4", 0.0518518518519, 11856, 3776, 151296, False),
    (17, "gp", None, "completed", "6795620c92", 0.451851851852, 15936, 4432, 117040, False),
    (18, "morph", 6, "completed", "e38de9a71a", 0.0666666666667, 9408, 4032, 67008, False),
    (19, "morph", 8, "completed", "c95968c4c6", 0.0814814814815, 6856, 2832, 8832, False),
    (20, "morph", 1, "completed", "61aed3e07c", 0.0333333333333, 9704, 2992, 40320, False),
    (21, "morph", 10, "completed", "37d59c751c", 0.148148148148, 4536, 2656, 5888, True),
    (22, "morph", 8, "completed", "18bb743b74", 0.0481481481481, 6240, 2416, 17920, True),
    (23, "morph", 6, "completed", "d83ca43063", 0.0592592592593, 5664, 2720, 31680, True),
]

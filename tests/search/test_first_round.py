"""The first GP round of a fresh install costs what the later ones cost: nothing is built on
first use.

botorch 0.18's qLogEHVI JIT-compiles a C++ kernel (``torch.utils.cpp_extension``) into the
per-user extension cache the first time it is constructed: 30-90 s on two cores, inside the
first GP round of a fresh install. ``sparsemod.search.acquisition`` skips that kernel. The
search here runs in a subprocess whose per-user caches (home, ~/.cache, the torch extension
and inductor caches, matplotlib's font cache, bytecode) are all empty folders, as on the
first run after ``pip install``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A first round under this passes whatever the later ones took, so that noise on short rounds
# cannot fail the test: the GP fit's iterations and restarts vary, and one GP round of this
# search took 2-4x another here. The kernel build this test guards against took 57-92 s on two
# busy cores (about 7 s on a fast machine, by botorch's own note): over 5 s plus a round.
FLOOR_S = 5.0


@pytest.mark.slow
def test_first_gp_round_of_a_fresh_install_is_within_3x_the_later_ones(tmp_path):
    ini = tmp_path / "config.ini"
    ini.write_text(
        f"[DEFAULT]\ntrain = true\n\n[TRAIN]\nname = first\nroot = {tmp_path / 'out'}\n"
        "problem = digits_cnn\nobjectives = 3\nr1 = 2\nr2 = 3\nr3 = 0\nmorphisms = false\n"
        "batch_size = 2\nepochs1 = 1\nepochs2 = 1\nnum_candidates = 64\ntolerance = 0\n"
        "max_model_size = 64KB\nmax_working_memory = 8KB\nprune_method = magnitude_layerwise\n"
        "device = cpu\n"
    )
    caches = {
        name: tmp_path / "cache" / name
        for name in (
            "HOME",
            "XDG_CACHE_HOME",
            "TORCH_EXTENSIONS_DIR",
            "TORCHINDUCTOR_CACHE_DIR",
            "MPLCONFIGDIR",
            "PYTHONPYCACHEPREFIX",
        )
    }
    for path in caches.values():
        path.mkdir(parents=True)
    env = {**os.environ, **{name: str(path) for name, path in caches.items()}}
    proc = subprocess.run(
        [sys.executable, "main.py", "--config", str(ini)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "first" / "summary.json").read_text())
    gp = [r["propose_seconds"] for r in summary["rounds"] if r["phase"] == "gp"]
    assert len(gp) == 3
    later = statistics.median(gp[1:])
    assert gp[0] <= max(3 * later, FLOOR_S), f"GP rounds took {[round(s, 2) for s in gp]} s"
    # The cause, checked directly: nothing was compiled into the extension cache.
    assert list(caches["TORCH_EXTENSIONS_DIR"].iterdir()) == []

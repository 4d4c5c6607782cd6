"""train-stream under torchrun: two CPU processes with gloo against one process.

Tolerance: the two runs see the same global batch (4) and the same seeds but not the same
example order (each rank draws its shard through a DistributedSampler), so their scores are
not bit-equal. On these tiny tasks (8-12 test rows each) we accept a difference of at most 0.25
in the final mean accuracy, and require both runs to record the same tasks and versions.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dpf_continual.registry import Registry

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

ARGS = ["--device", "cpu", "--max-steps", "8", "--batch-size", "4", "--replay-size", "6",
        "--lr", "0.1", "--seed", "0"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dpf_cl() -> str:
    return str(Path(sys.executable).with_name("dpf-cl"))


def _final_mean(url: str) -> tuple[float, object]:
    registry = Registry.open(url)
    run = registry.runs()[-1]
    names, matrix = registry.accuracy_matrix(run.id, kind="live")
    final = [cell for cell in matrix[-1] if cell is not None]
    return sum(final) / len(final), run


def test_two_gloo_processes_match_one_process(stream_registry):
    single, double = stream_registry("single"), stream_registry("double")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [_dpf_cl(), "train-stream", "--registry", single, *ARGS],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
         _dpf_cl(), "train-stream", "--registry", double, *ARGS],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]

    mean_one, run_one = _final_mean(single)
    mean_two, run_two = _final_mean(double)
    assert run_one.world_size == 1 and run_two.world_size == 2
    assert run_two.config["global_batch"] == 4 and run_two.config["per_rank_batch"] == 2
    assert len(Registry.open(double).versions()) == len(Registry.open(single).versions()) == 3
    assert Registry.open(double).check_integrity() == []
    assert abs(mean_one - mean_two) <= 0.25, (mean_one, mean_two)

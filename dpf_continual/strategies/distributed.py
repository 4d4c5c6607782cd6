"""Data-parallel training with PyTorch's own engine (``torchrun``), one process per device.

Under ``torchrun --nproc_per_node N`` every process (rank) holds the frozen backbone and the
small prompt module. The prompt module is wrapped in ``DistributedDataParallel`` (rebuilt after
each task, since the pool grows), each rank sees its own shard of every batch through a
``DistributedSampler``, the loss weights' gradients are averaged by hand, and only rank 0
writes the registry. Everything random is seeded identically on every rank, so all ranks agree
on task order, pool growth and the replay buffer without talking about it.

Backends: ``nccl`` when the ranks use CUDA, ``gloo`` on CPUs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the job (world size 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> tuple[DistributedContext, str]:
    """Join the process group when launched by torchrun; returns the context and the device.

    Args:
        device: The requested device (``auto``, ``cpu``, ``cuda``...).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(), device
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    elif device == "auto":
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    logger.info("rank %d of %d on %s", rank, world_size, device)
    return DistributedContext(rank, world_size, local_rank), device


def teardown() -> None:
    """Leave the process group (no-op outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(params: list[torch.Tensor], world_size: int) -> None:
    """All-reduce the gradients of ``params`` to their mean over ranks (for non-DDP state)."""
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
        param.grad /= world_size


def all_finite(value: torch.Tensor) -> bool:
    """True only if ``value`` is finite on every rank (so all ranks stop together)."""
    flag = torch.tensor([1.0 if bool(torch.isfinite(value).all()) else 0.0], device=value.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() == 1.0)


class FollowerRegistry:
    """The registry as seen by ranks other than 0: reads pass through, writes do nothing."""

    _WRITES = {"start_run", "commit_version", "finish_run", "rollback", "add_task"}

    def __init__(self, registry) -> None:
        self._registry = registry

    def __getattr__(self, name: str):
        if name in self._WRITES:
            return lambda *args, **kwargs: None
        return getattr(self._registry, name)

"""Data parallelism under torchrun: one process per device, each taking its slice of every global batch.

Every rank draws the same global batch of real samples and of z (same seed), and keeps rows
[rank*B, (rank+1)*B). Gradients are averaged over ranks after each backward, so N processes with batch
B take exactly the steps of one process with batch N*B (for a model without batch norm or dropout,
whose per-rank statistics differ). Gradients are averaged explicitly, not by wrapping the models in
DistributedDataParallel: DDP fixes the set of parameters that need gradients when it wraps them, and
the loop freezes D during G's update by turning requires_grad off and on at every step."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from gan_cli.errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0 alone writes logs, pictures and checkpoints."""
        return self.rank == 0

    def shard(self, x: Tensor | None) -> Tensor | None:
        if x is None or self.size == 1:
            return x
        n = len(x) // self.size
        return x[self.rank * n:(self.rank + 1) * n]

    def average_gradients(self, module: nn.Module) -> None:
        if self.size == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])  # one collective per update, not one per tensor
        dist.all_reduce(flat)
        flat /= self.size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def mean(self, values: Tensor) -> Tensor:
        if self.size > 1:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.size
        return values

    def sum(self, value: Tensor) -> Tensor:
        if self.size > 1:
            value = value.clone()
            dist.all_reduce(value)
        return value


def join(device_name: str, default_device) -> tuple[World, torch.device]:
    """The world torchrun started this process in (WORLD_SIZE, RANK, LOCAL_RANK), or a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), default_device(device_name)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(size)))
    wants_gpu = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if wants_gpu:
        if local_size > torch.cuda.device_count():
            raise UserError(f"torchrun started {local_size} processes on this machine but it has "
                            f"{torch.cuda.device_count()} GPUs; use --nproc-per-node={torch.cuda.device_count()} "
                            f"or fewer")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return World(rank, size), device


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

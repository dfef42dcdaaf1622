"""train.compile: the networks' forward passes, and the backward passes derived from them, through
torch.compile (Inductor: fused C++/OpenMP kernels on the CPU, Triton kernels on a GPU).

Each network is compiled in place (nn.Module.compile), so its state_dict, its checkpoint and every command
that reads the checkpoint are unchanged; the optimisers, the losses and the loop stay eager Python.
Compiling happens at a network's first calls in each mode (training, under no_grad, with D frozen for G's
update), within the run's first steps and its time budget.

A network whose gradient is differentiated again (WGAN-GP's and R1's penalties, an unrolled D, StyleGAN2's
path length) stays eager, with one warning: torch.compile's backward cannot itself be differentiated.
"""

from __future__ import annotations

import logging
import shutil

import torch

from gan_cli.algorithms.base import Algorithm
from gan_cli.errors import UserError

log = logging.getLogger(__name__)


def compile_networks(algorithm: Algorithm, device: torch.device) -> list[str]:
    """Compile the algorithm's networks that can be, in place; returns their names."""
    check_compiler(device)
    eager = algorithm.differentiated()
    for name, key in eager.items():
        log.warning("train.compile: %s stays eager: %s differentiates its gradient again (a double backward, "
                    "which torch.compile does not support)", name, key)
    compiled = [name for name in algorithm.models if name not in eager]
    for name in compiled:
        algorithm.models[name].compile()
    if compiled:
        log.info("train.compile: %s compiled by torch.compile; the first steps include compiling them",
                 " and ".join(compiled))
    return compiled


def check_compiler(device: torch.device) -> None:
    """Inductor writes C++ for the CPU and Triton for a GPU: refuse in one line where neither is at hand,
    rather than fail inside the first step."""
    if device.type == "cpu" and not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
        raise UserError("train.compile=true on the CPU needs a C++ compiler (torch.compile generates C++): install "
                        "g++ (apt install g++) or clang, or drop train.compile")
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise UserError("train.compile=true on a GPU needs Triton (pip install triton), or drop train.compile")

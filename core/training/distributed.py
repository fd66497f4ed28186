"""Multi-process training through ``torchrun`` and ``torch.distributed`` (DDP), nothing home-made.

``torchrun --nproc_per_node=N -m mtrec run ...`` starts N copies of the same command; each reads
its rank from the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and
:func:`init_from_env` joins the process group (``nccl`` on CUDA, ``gloo`` on CPU;
``MTREC_DIST_BACKEND`` overrides).  Every rank runs the whole engine -- same config, same data,
same seeds -- so that every collective call is reached by every rank in the same order; what
differs is:

* training: the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` and each
  rank sees its share of every epoch's examples through a seeded
  :class:`~torch.utils.data.DistributedSampler` (see :mod:`mtrec.training.trainer`);
* evaluation: users are sharded across ranks and every rank's per-user metric values are
  gathered, so every rank gets the exact report of one process (:func:`shard`,
  :func:`all_gather_objects`);
* side effects: only rank 0 writes to the registry, the run folder and the console, and calls
  lifecycle hooks (:func:`is_main`).

Outside ``torchrun`` (``WORLD_SIZE`` unset or 1) every helper is a no-op for a world of one.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mtrec.errors import ConfigError

#: How long a collective waits for the slowest rank (an identifier fitted once per rank can be slow).
COLLECTIVE_TIMEOUT = dt.timedelta(hours=2)
BACKEND_ENV = "MTREC_DIST_BACKEND"


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0


def world() -> World:
    """This process's place in the process group (a world of one when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return World()


def is_distributed() -> bool:
    return world().size > 1


def is_main() -> bool:
    """True on rank 0 (and in a plain single-process run): the rank that writes and reports."""
    return world().rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device_spec: str) -> bool:
    """Join the process group ``torchrun`` describes; return True when this call created it.

    The backend follows the device: ``nccl`` for CUDA, ``gloo`` for CPU (``MTREC_DIST_BACKEND``
    overrides, e.g. ``gloo`` on GPUs for debugging).  On CUDA each rank uses ``cuda:LOCAL_RANK``.
    """
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 (torchrun) but this torch build has no torch.distributed")
    wants_cuda = device_spec.startswith("cuda") or (device_spec == "auto" and torch.cuda.is_available())
    backend = os.environ.get(BACKEND_ENV) or ("nccl" if wants_cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    kwargs: dict[str, Any] = {"backend": backend, "timeout": COLLECTIVE_TIMEOUT}
    if wants_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s): "
                "use --nproc_per_node <= the number of GPUs"
            )
        torch.cuda.set_device(local_rank)
        if backend == "nccl":
            kwargs["device_id"] = torch.device("cuda", local_rank)
    dist.init_process_group(**kwargs)
    return True


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


# --------------------------------------------------------------------------- collectives


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; for configs, ids and small states)."""
    if not is_distributed():
        return obj
    box = [obj if world().rank == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world().size
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(value: float) -> float:
    if not is_distributed():
        return value
    return float(np.mean(all_gather_objects(float(value))))


def shard(indices: np.ndarray) -> np.ndarray:
    """This rank's share of ``indices``: every ``size``-th one from position ``rank`` (none twice, none dropped)."""
    w = world()
    return indices[w.rank :: w.size] if w.size > 1 else indices


# --------------------------------------------------------------------------- DDP


class LossModule(nn.Module):
    """``forward(batch) = combine(model.loss(batch))``: the call DDP needs to see.

    DDP synchronises gradients of what runs inside its ``forward``; encoders expose ``loss``
    rather than ``forward``, so this wrapper routes the trainer's call through DDP.  A combiner
    that is an ``nn.Module`` is a submodule here, so its parameters are synchronised as well.
    """

    def __init__(self, model: nn.Module, combine: Callable[[Any], torch.Tensor], loss_fn: Callable | None = None) -> None:
        super().__init__()
        self.model = model
        if isinstance(combine, nn.Module):
            self.combine = combine
        else:
            self._combine = combine
        self._loss = loss_fn or model.loss

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        combine = self.combine if "combine" in self._modules else self._combine
        return combine(self._loss(batch))


def wrap_ddp(model: nn.Module, combine: Callable, trainable: list[nn.Parameter], device: torch.device) -> tuple[nn.Module, Callable[[], None]]:
    """Wrap ``model`` (and its combiner) in DDP for one stage; return it and an undo function.

    Parameters that require grad but are not among this stage's ``trainable`` ones are frozen for
    the stage, so DDP neither waits for nor reduces their gradients; ``undo`` restores them.
    ``find_unused_parameters`` is on because per-domain modules (MAN's local encoders, SyNCRec's
    experts behind a stop-gradient, a domain absent from one rank's batch) legitimately get no
    gradient in some steps.
    """
    wrapper = LossModule(model, combine)
    keep = {id(p) for p in trainable}
    frozen = [p for p in wrapper.parameters() if p.requires_grad and id(p) not in keep]
    for p in frozen:
        p.requires_grad_(False)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel(wrapper, device_ids=ids, find_unused_parameters=True)

    def undo() -> None:
        for p in frozen:
            p.requires_grad_(True)

    return ddp, undo


def stage_seed(seed: int, stage_index: int) -> int:
    """The torch seed of one rank during one stage: distinct dropout and sampling per rank."""
    return (seed * 1_000_003 + stage_index * 7_919 + world().rank) % (2**63 - 1)

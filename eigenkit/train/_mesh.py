"""Data parallelism with ``jax.jit`` + ``NamedSharding`` over a 1-D ``"data"`` mesh axis
(eigenkit/ARCHITECTURE.md rule 8).

Parameters are replicated, the global batch is sharded along its leading axis, and XLA inserts the gradient
all-reduce. The same code runs on one CPU, 8 fake CPU devices, one GPU, or a multi-host TPU slice (call
:func:`initialize_distributed` first; each host then passes its *process-local* slice of the global batch to
:func:`shard_batch`).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed() -> bool:
    """Initialise multi-host JAX when running on several hosts; a no-op on one host.

    On TPU VMs ``jax.distributed.initialize()`` discovers the coordinator by itself; elsewhere set
    ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (or ``EIGENKIT_DISTRIBUTED=1`` to
    force the call). Must run before anything touches the devices.

    Returns:
      Whether ``jax.distributed.initialize`` was called.
    """
    wanted = os.environ.get("EIGENKIT_DISTRIBUTED") == "1" or "JAX_COORDINATOR_ADDRESS" in os.environ
    if os.environ.get("TPU_WORKER_HOSTNAMES", "").count(",") >= 1:  # set on multi-host TPU VMs
        wanted = True
    if wanted:
        jax.distributed.initialize()
    return wanted


def make_mesh(devices: list | None = None, *, axis: str = DATA_AXIS) -> Mesh:
    """A 1-D mesh with one axis (default ``"data"``) over ``devices`` (default: all devices of all hosts)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must be a non-empty list of jax devices")
    return Mesh(np.asarray(devices), (axis,))


def data_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of a global batch: leading axis split over the mesh's first axis, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of parameters and optimiser state: a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Put a host pytree of arrays on the mesh, sharded along the leading (batch) axis.

    Single process: ``batch`` is the **global** batch. Multi-host: ``batch`` is this process's slice, and the
    global batch is assembled with ``jax.make_array_from_process_local_data``.

    Raises:
      ValueError: a leaf has no leading axis, or the global batch size is not divisible by the number of devices.
    """
    sharding = data_sharding(mesh)
    n_dev = mesh.devices.size
    n_proc = jax.process_count()

    def put(path, x):
        x = np.asarray(x)
        name = jax.tree_util.keystr(path) or "batch"
        if x.ndim == 0:
            raise ValueError(f"batch leaf {name} is a scalar; every leaf needs a leading batch axis")
        global_size = x.shape[0] * n_proc
        if global_size % n_dev:
            raise ValueError(
                f"global batch size {global_size} (leaf {name}, shape {x.shape}) is not divisible by the "
                f"{n_dev} devices of the mesh; choose a batch size that is a multiple of {n_dev}"
            )
        if n_proc == 1:
            return jax.device_put(x, sharding)
        return jax.make_array_from_process_local_data(sharding, x, (global_size, *x.shape[1:]))

    return jax.tree_util.tree_map_with_path(put, batch)

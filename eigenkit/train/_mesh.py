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


def initialize_distributed(*, heartbeat_timeout_s: int | None = None) -> bool:
    """Initialise multi-process JAX when the environment asks for it; a no-op for a single process.

    On TPU VMs (and under SLURM / Open MPI) ``jax.distributed.initialize()`` discovers the coordinator by itself;
    elsewhere (several GPU processes on a host, CPU processes on loopback) set ``JAX_COORDINATOR_ADDRESS``
    (``host:port`` of process 0), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` — or ``EIGENKIT_DISTRIBUTED=1`` to
    force the auto-detecting call. CPU devices of different processes talk through gloo (the CPU collectives are
    selected here; GPUs and TPUs use their own). ``heartbeat_timeout_s`` (default: ``EIGENKIT_HEARTBEAT_TIMEOUT_S``,
    else JAX's 100 s) bounds how long the others wait before failing when a process dies. Must run before anything
    touches the devices.

    Returns:
      Whether ``jax.distributed.initialize`` was called.
    """
    env = os.environ
    wanted = env.get("EIGENKIT_DISTRIBUTED") == "1" or "JAX_COORDINATOR_ADDRESS" in env
    if env.get("TPU_WORKER_HOSTNAMES", "").count(",") >= 1:  # set on multi-host TPU VMs
        wanted = True
    if not wanted:
        return False
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {}
    if "JAX_COORDINATOR_ADDRESS" in env:
        kwargs["coordinator_address"] = env["JAX_COORDINATOR_ADDRESS"]
    for key, name in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
        if key in env:
            kwargs[name] = int(env[key])
    timeout = heartbeat_timeout_s or int(env.get("EIGENKIT_HEARTBEAT_TIMEOUT_S", 0))
    if timeout:
        kwargs["heartbeat_timeout_seconds"] = timeout
    jax.distributed.initialize(**kwargs)
    return True


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

"""eigenkit: spectral methods from recent papers as pure JAX functions and Flax NNX modules.

Floors (imports only go down; see eigenkit/ARCHITECTURE.md):

* ``eigenkit.linalg``, ``eigenkit.graph``, ``eigenkit.ssm``, ``eigenkit.manifolds`` — pure spectral primitives;
* ``eigenkit.nn`` — generic Flax NNX blocks;
* ``eigenkit.methods.<method>`` — one package per paper;
* beside them: ``eigenkit.data`` (offline loaders), ``eigenkit.train`` (mesh, step, checkpoints, loop).

Subpackages are imported explicitly (``from eigenkit import linalg``); importing ``eigenkit`` itself is cheap.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

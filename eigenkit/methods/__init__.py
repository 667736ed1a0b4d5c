"""One package per paper (floor 3): NNX modules and pure procedures built on the primitives.

* ``eigenkit.methods.spe`` — stable & expressive positional encodings (Huang et al., ICLR 2024);
* ``eigenkit.methods.s4d`` — diagonal state-space layers and models (Gu et al., NeurIPS 2022);
* ``eigenkit.methods.gcr`` — Grassmann class representation head (Wang et al., ICCV 2023);
* ``eigenkit.methods.eora`` — compression + eigenspace low-rank compensation of LLMs (Liu et al., 2024);
* ``eigenkit.methods.eigenshield`` — random-matrix causal-subspace filtering of embeddings (Darabi et al., 2025;
  reconstructed from the abstract: no official code);
* ``eigenkit.methods.rkhs`` — augmentation kernels, their spectra and RKHS regression for augmentation-based SSL
  (Zhai et al., ICLR 2024; no official code; library only so far);
* ``eigenkit.methods.eigentrajectory`` — low-rank ET descriptors and anchors for trajectory forecasting (Bae et al.,
  ICCV 2023; pure pieces so far, no backbone or training).

Methods never import each other; what two methods share lives in ``eigenkit.nn`` or a primitive package.
"""

"""S4D: diagonal state-space sequence models (Gu, Gupta, Goel, Ré, NeurIPS 2022, arXiv 2206.11893).

Flax NNX layers over the pure kernels of :mod:`eigenkit.ssm`, the residual sequence classifier of the official
``example.py``, the optimiser recipe (A, dt, B: own learning rate, zero weight decay) and a loader for the official
PyTorch weights.

Example::

    model = S4DModel(1, 10, d_model=64, d_state=64, n_layers=4, init=ssm.Init.LIN, rngs=nnx.Rngs(0))
    logits = model(x)                                  # (batch, L, 1) -> (batch, 10), convolution mode
    lm = S4DModel(18, 10, tokens=True, bidirectional=True, init=ssm.Init.LIN, rngs=nnx.Rngs(0))
    logits = lm(token_ids, lengths=lengths)            # (batch, L) int ids -> (batch, 10), masked mean pool
    tx = s4d_optimizer(nnx.state(model, nnx.Param), lr=1e-2, weight_decay=1e-2, ssm_lr=1e-3, total_steps=1000)
    h = model.generate_features(x)                     # recurrent mode == model.features(x)
    layer = from_official_state_dict(S4D(H, N, init=ssm.Init.LIN, rngs=nnx.Rngs(0)), torch_state_dict_as_numpy)
"""

from eigenkit.methods.s4d._layer import S4D, Norm, S4DConv, S4DModel, SSMOutputParam, SSMParam, SSMStepParam, Transform
from eigenkit.methods.s4d._official import from_official_state_dict
from eigenkit.methods.s4d._optim import s4d_optimizer, s4d_param_labels
from eigenkit.nn import Pooling  # re-exported: the one Pooling enum (MEAN / LAST for sequences)

__all__ = ["Norm", "Pooling", "S4D", "S4DConv", "S4DModel", "SSMOutputParam", "SSMParam", "SSMStepParam",
           "Transform",
           "from_official_state_dict", "s4d_optimizer", "s4d_param_labels"]

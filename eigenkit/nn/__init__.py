"""Generic Flax NNX blocks shared by several methods (floor 2: imports primitives, never a method package).

* normalisation: :class:`MaskedBatchNorm` (padding excluded from the statistics; the official unmasked mode too);
* MLPs: :class:`MLP`, :func:`torch_linear_init` (PyTorch's default Linear init, for parity with official code);
* graph networks on jraph: :class:`GINLayer`, :class:`GINELayer`, :class:`DenseGINLayer`, :class:`GINE`,
  :class:`GINEGraphRegressor`, pooling (:class:`Pooling`, :func:`pool_nodes`, :func:`graph_index`);
* layer stacks: :func:`remat_sequential` (rematerialisation that saves memory on CPU too: ``lax.scan`` over
  checkpointed layers);
* image backbones: :class:`SmallCNN`, :class:`ResNetD` / :func:`resnet50d` (ResNet-D: deep stem, average-pool
  shortcut; 25.58M parameters for ResNet-50-D) with :class:`GroupBatchNorm` (per-device-style BN statistics);
  :class:`CifarResNet` / :func:`resnet18_cifar` (3×3 stem, BasicBlocks; MLC's backbone);
* BERT encoders: :class:`BertEncoder`, :func:`bert_from_weights`, :func:`mean_pool` (MiniLM sentence embeddings,
  used by EigenShield's text experiment);
* LLaMA-style decoders: :class:`LlamaModel` (RMSNorm, RoPE, grouped-query attention, SwiGLU), weight loading and
  greedy generation (used by EoRA on SmolLM2);
* vision-language: :class:`ClipVision` (CLIP ViT tower) and :class:`Llava` (LLaVA-1.5: CLIP features, MLP projector,
  LLaMA decoder; Hugging Face weights via :class:`eigenkit.data.HFLlavaCheckpoint`), used by EigenShield's paper
  preset.
"""

from eigenkit.nn._bert import BertConfig, BertEncoder, bert_from_weights, mean_pool
from eigenkit.nn._clip import (
    CLIP_MEAN,
    CLIP_STD,
    ClipVision,
    ClipVisionConfig,
    Llava,
    LlavaConfig,
    clip_vision_from_weights,
    llava_from_weights,
    llava_weights,
    quick_gelu,
)
from eigenkit.nn._cnn import SmallCNN
from eigenkit.nn._gnn import (
    GINE,
    DenseGINLayer,
    GINEGraphRegressor,
    GINELayer,
    GINLayer,
    Pooling,
    graph_index,
    pool_nodes,
)
from eigenkit.nn._llama import (
    LINEAR_INPUTS,
    LINEAR_NAMES,
    LlamaBlock,
    LlamaConfig,
    LlamaModel,
    RMSNorm,
    RopeLayout,
    block_apply,
    greedy_generate,
    llama_from_weights,
    llama_weights,
    next_token_nll,
    rope,
)
from eigenkit.nn._mlp import MLP, torch_linear_init
from eigenkit.nn._norm import MaskedBatchNorm
from eigenkit.nn._remat import remat_sequential
from eigenkit.nn._resnet import BasicBlock, CifarResNet, GroupBatchNorm, ResNetD, resnet18_cifar, resnet50d

# --- more re-exports below (one line per block family) ---

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "ClipVision",
    "ClipVisionConfig",
    "Llava",
    "LlavaConfig",
    "clip_vision_from_weights",
    "llava_from_weights",
    "llava_weights",
    "quick_gelu",
    "GroupBatchNorm",
    "ResNetD",
    "BasicBlock",
    "CifarResNet",
    "resnet18_cifar",
    "resnet50d",
    "BertConfig",
    "BertEncoder",
    "bert_from_weights",
    "mean_pool",
    "LINEAR_INPUTS",
    "LINEAR_NAMES",
    "LlamaBlock",
    "LlamaConfig",
    "LlamaModel",
    "RMSNorm",
    "RopeLayout",
    "block_apply",
    "greedy_generate",
    "llama_from_weights",
    "llama_weights",
    "next_token_nll",
    "rope",
    "GINE",
    "MLP",
    "DenseGINLayer",
    "GINEGraphRegressor",
    "GINELayer",
    "GINLayer",
    "MaskedBatchNorm",
    "Pooling",
    "SmallCNN",
    "graph_index",
    "pool_nodes",
    "remat_sequential",
    "torch_linear_init",
]

"""EoRA: training-free eigenspace low-rank compensation of compressed LLMs (Liu et al. 2024, arXiv:2410.21271).

Pure pieces: streaming input covariance, EoRA factors (eigen and Cholesky paths), the plain-SVD baseline, and the
compressors (RTN, GPTQ, SparseGPT / Wanda / magnitude n:m, combinations). :func:`compress_and_compensate` is the
layer-sequential driver over :class:`eigenkit.nn.LlamaModel`.
"""

from eigenkit.methods.eora._compress import (
    CompressionSpec,
    Pruner,
    Quantizer,
    compress_weight,
    gptq_quantize,
    magnitude_prune_nm,
    quant_params,
    quantize_dequantize,
    rtn_quantize,
    sparsegpt_prune,
    wanda_prune_nm,
)
from eigenkit.methods.eora._covariance import (
    CovarianceState,
    CovarianceWeighting,
    covariance_finalize,
    covariance_init,
    covariance_merge,
    covariance_update,
    input_covariance,
)
from eigenkit.methods.eora._driver import (
    Compensation,
    CompensationSpec,
    apply_factors,
    compensate_model,
    compress_and_compensate,
    compress_model,
    perplexity,
    truncate_factors,
)
from eigenkit.methods.eora._factors import (
    EigenClamp,
    activation_error,
    compensated_linear,
    eigen_sqrt,
    eora_factors,
    eora_factors_cholesky,
    eora_factors_from_sqrt,
    svd_factors,
)

__all__ = [
    "Compensation",
    "CompensationSpec",
    "compensate_model",
    "compress_and_compensate",
    "compress_model",
    "truncate_factors",
    "perplexity",
    "CompressionSpec",
    "CovarianceState",
    "CovarianceWeighting",
    "EigenClamp",
    "Pruner",
    "Quantizer",
    "activation_error",
    "apply_factors",
    "compensated_linear",
    "compress_weight",
    "covariance_finalize",
    "covariance_init",
    "covariance_merge",
    "covariance_update",
    "eigen_sqrt",
    "eora_factors",
    "eora_factors_cholesky",
    "eora_factors_from_sqrt",
    "gptq_quantize",
    "input_covariance",
    "magnitude_prune_nm",
    "quant_params",
    "quantize_dequantize",
    "rtn_quantize",
    "sparsegpt_prune",
    "svd_factors",
    "wanda_prune_nm",
]

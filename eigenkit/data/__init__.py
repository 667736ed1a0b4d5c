"""Offline data: one loader per source, local files only, cached preprocessing, clear errors when missing.

See ``../shared/DATA.md`` in the developer docs for the sources that work offline.
"""

from eigenkit.data._common import MissingDataError, cache_dir, cached_arrays, find_package_dir
from eigenkit.data._imagefolder import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageBatches,
    ImageFolder,
    center_crop_image,
    eval_image_batches,
    image_folder,
    load_image,
    normalize_images,
    random_resized_crop,
)
from eigenkit.data._images import FASHION_MNIST_CLASSES, digits, fashion_mnist
from eigenkit.data._minilm import minilm_config, minilm_dir, minilm_tokenizer, minilm_weights, read_safetensors
from eigenkit.data._molecules import (
    ATOM_TYPES,
    BOND_TYPES,
    MoleculeGraphs,
    molecules_from_smiles,
    moses_penalized_logp,
)
from eigenkit.data._smollm2 import smollm2_gguf_path, smollm2_hparams, smollm2_tokenizer, smollm2_weights
from eigenkit.data._text import (
    BOOKS,
    austen_books,
    austen_install_commands,
    austen_root,
    text_passage_sets,
    text_passages,
)
from eigenkit.data._zinc import ZINC_ATOM_TYPES, ZINC_BOND_TYPES, read_torch_pickle, zinc

__all__ = [
    "ZINC_ATOM_TYPES",
    "ZINC_BOND_TYPES",
    "read_torch_pickle",
    "zinc",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageBatches",
    "ImageFolder",
    "center_crop_image",
    "eval_image_batches",
    "image_folder",
    "load_image",
    "normalize_images",
    "random_resized_crop",
    "BOOKS",
    "austen_books",
    "austen_install_commands",
    "austen_root",
    "minilm_config",
    "minilm_dir",
    "minilm_tokenizer",
    "minilm_weights",
    "read_safetensors",
    "smollm2_gguf_path",
    "smollm2_hparams",
    "smollm2_tokenizer",
    "smollm2_weights",
    "text_passage_sets",
    "text_passages",
    "ATOM_TYPES",
    "BOND_TYPES",
    "MoleculeGraphs",
    "molecules_from_smiles",
    "moses_penalized_logp",
    "FASHION_MNIST_CLASSES",
    "MissingDataError",
    "cache_dir",
    "cached_arrays",
    "digits",
    "fashion_mnist",
    "find_package_dir",
]

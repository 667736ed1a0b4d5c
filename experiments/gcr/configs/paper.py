"""paper preset: the official ResNet-50-D / ImageNet-1K GCR recipe (innerlee/GCR
``configs/resnet/resnet50d_8xb32_coslr_in1k_gcr8.py`` and its vector-softmax twin), run by experiments/gcr/imagenet.py.

Command (your ImageNet copy in the ImageFolder layout, ``DIR/train/<wnid>/*.JPEG`` and ``DIR/val/<wnid>/*.JPEG``;
optionally a transfer dataset ``TDIR/train/<class>/*`` and ``TDIR/test/<class>/*`` for the linear probe)::

    python -m experiments run gcr --preset paper --config.data_dir=DIR [--config.transfer_dir=TDIR \\
        --config.transfer_name=cifar10]

Expected (estimates, not measured here): ~2 days on 8 V100-class GPUs for the two trainings (softmax and GCR k = 8,
100 epochs each; mmpretrain's ResNet-50 reference is ~20 h per 100 epochs on 8 V100), ~1 day on 8 A100s or a
TPU v4-8 in bfloat16; per device ~10 GB accelerator memory at 32 images in bfloat16; host ~16 GB RAM and as many
cores as ``num_workers`` for JPEG decoding. Expected top-1 (official README): 79.26 (GCR k = 8) vs 78.05 (softmax);
the other k of the README table (78.42 / 78.68 / 79.26 / 79.21 / 78.63 for k = 1 / 4 / 8 / 16 / 32) with
``--config.head_dims='(1,4,8,16,32)'``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = ("ResNet-50-D on ImageNet-1K (ImageFolder JPEGs from data_dir), GCR k=8 vs vector softmax, "
                     "official recipe; optional linear-transfer probe on transfer_dir")
    c.expected_runtime = "~2 days on 8 V100-class GPUs, ~1 day on 8 A100s / TPU v4-8 (estimate, not run here)"
    c.expected_device = "8 GPUs (V100/A100-class) or a TPU v4-8 / v5e-8 slice; runs on any device count"
    c.expected_memory = "~10 GB per accelerator (32 images per device, bfloat16); ~16 GB host RAM"
    c.dataset = "imagenet"
    c.data_dir = ""  # user-provided ImageNet root holding train/ and val/
    c.val_split = "val"
    c.transfer_dir = ""  # optional: a transfer dataset with train/ and test/ ImageFolder splits
    c.transfer_name = "transfer"
    c.transfer_test_split = "test"
    c.seeds = (0,)
    c.head_dims = (8,)  # README table: k = 1 / 4 / 8 / 16 / 32 -> 78.42 / 78.68 / 79.26 / 79.21 / 78.63
    c.transfer_head_dims = (8,)
    # backbone: ResNet-50-D (eigenkit.nn.ResNetD); shrink with stage_sizes / width / stem_width for tests
    c.backbone = "resnet50d"
    c.stage_sizes = (3, 4, 6, 3)
    c.width = 64
    c.stem_width = 32
    c.bn_group_size = 32  # per-GPU BN of the 8 x 32 recipe (statistics per 32 images); 0 = over the global batch
    c.compute_dtype = "bfloat16"  # float32 parameters and BN statistics; "float32" for full precision
    # data
    c.image_size = 224  # RandomResizedCrop(224) + horizontal flip; test: resize 256, centre crop 224
    c.resize_size = 256
    c.num_workers = 32  # JPEG-decoding threads per process
    c.input_pipeline = "grain"  # train.grain_batches (position checkpointed); "host": data.ImageBatches
    c.grain_workers = 8  # Grain worker processes per JAX process (0: decode in this process's threads)
    # optimisation (same budget and schedule for every head)
    c.batch_size = 256  # global: 8 GPUs x 32
    c.eval_batch_size = 256
    c.epochs = 100
    c.learning_rate = 0.1  # SGD momentum 0.9 for the backbone, the same (scheduled) lr for the bases
    c.schedule = "cosine_by_epoch"  # CosineAnnealing T_max = 100, stepped per epoch (piecewise constant)
    c.weight_decay = 1e-4  # non-geometric params only
    c.momentum = 0.9
    c.warmup_epochs = 0.0  # the plain resnet50d cosine recipe has no warm-up (the RSB/DeiT3/Swin recipes do)
    c.gcr_lr_factor = 1.0
    c.gcr_gamma = 25.0
    c.gcr_reorth_every = 5
    c.gcr_momentum_rule = "EUCLIDEAN_BUFFER"
    c.label_smoothing = 0.0
    c.probe_max_iter = 1000
    c.eval_every_epochs = 5.0
    c.log_every = 100
    c.checkpoint_every = 2000  # steps (5004 steps per epoch at batch 256)
    c.show_progress = True
    return c

"""paper preset: the image experiment at full Fashion-MNIST scale (60k images: 50k train, 10k calibration; the 10k
test images; PGD-40), from the user's copy of the Fashion-MNIST idx files (``--config.data_root=PATH``, else the
installed copy).

**Not the paper's setting.** EigenShield is evaluated on vision-language models under jailbreak attacks; no VLM can
be run offline here, so this preset scales the image-encoder proxy of the cpu preset, with multi-device data
parallelism for the encoder's training (``eigenkit.train``). Command:
python -m experiments run eigenshield --preset paper [--config.data_root=PATH]
"""

from experiments.eigenshield.configs.cpu import get_config as _cpu


def get_config():
    c = _cpu()
    c.update(dict(description="EigenShield-style filter on a full-scale Fashion-MNIST CNN encoder under PGD-40 "
                              "(proxy: not the paper's VLM setting)",
                  expected_runtime="~1-2 h on 2 CPU cores; minutes on one GPU",
                  n_train=50000, n_cal=10000, n_test=10000, channels=(32, 64), features=128, epochs=20,
                  pgd_steps=40, eps=(2, 4, 8, 16),
                  input_pipeline="grain", grain_workers=0))  # train.grain_batches (position checkpointed)
    return c

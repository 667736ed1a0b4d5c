"""paper preset: the S4D paper's sequential-image recipe (official example.py / sCIFAR LRA-Image config scaled to
sequential Fashion-MNIST): 6 x H=512, N=64, batch norm, post-norm, dropout 0.1, AdamW lr 0.01 wd 0.05, SSM params
(A, dt, B and C: scalar-lr config) lr 0.001, cosine with 10% warm-up, 200 epochs of 60k images.

Command: python -m experiments run s4d --preset paper   (expected runtime: ~10 h on one A100-class GPU; not run here)
"""

from experiments.s4d.configs import cpu


def get_config():
    c = cpu.get_config()
    steps_per_epoch = 60000 // 50
    c.update(dict(description="S4D-Lin 6 x H=512, N=64, sequential Fashion-MNIST, full data, 200 epochs (paper's "
                              "image recipe)", expected_runtime="~10 h on one A100-class GPU (not run here)"))
    c.update(dict(n_train=60000, n_test=10000, d_model=512, d_state=64, n_layers=6, dropout=0.1, norm="batch",
                  prenorm=False, learning_rate=1e-2, ssm_lr=1e-3, weight_decay=5e-2, c_with_ssm_lr=True))
    c.update(dict(batch_size=50, num_steps=200 * steps_per_epoch, warmup_steps=200 * steps_per_epoch // 10,
                  eval_every=steps_per_epoch, checkpoint_every=steps_per_epoch, baseline=True, baseline_max_iter=1000))
    return c

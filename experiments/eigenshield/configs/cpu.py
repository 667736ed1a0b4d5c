"""cpu preset: SmallCNN encoder on Fashion-MNIST, EigenShield vs none / same-rank PCA / same-rank random projection,
non-adaptive and adaptive PGD at three L∞ budgets, 3 seeds.

Command: python -m experiments run eigenshield --preset cpu
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = ("EigenShield-style (reconstructed) embedding filter vs same-rank PCA / random / none on a "
                     "Fashion-MNIST CNN encoder under PGD (non-adaptive and adaptive), 3 seeds")
    c.expected_runtime = "~5 min on 2 CPU cores"
    c.data_root = ""          # Fashion-MNIST idx files; "" = the installed copy (eigenkit.data.fashion_mnist)
    c.n_train, c.n_cal, c.n_test = 12000, 4000, 1000
    c.seeds = (0, 1, 2)
    # encoder / head
    c.channels = (16, 32)
    c.features = 64
    # optimisation
    c.batch_size = 128
    c.eval_batch_size = 500
    c.epochs = 4
    c.learning_rate = 2e-3
    c.eval_every = 0
    c.checkpoint_every = 0
    c.log_every = 100
    c.show_progress = True
    # EigenShield (reconstructed defaults, eigenkit.methods.eigenshield.fit)
    c.alpha = 0.1
    c.n_bootstrap = 20
    # attacks: PGD L∞ in pixel space, eps in 1/255
    c.eps = (4, 8, 16)
    c.pgd_steps = 10
    return c

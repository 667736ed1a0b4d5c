"""paper preset: the official ZINC configuration (configs/zinc/SPE_gine_gin_mlp_pe37.yaml) on MOSES penalised logP.

Not run here (GPU-scale: 1000 epochs × 3 methods × 3 seeds). MOSES molecules have <= 26 heavy atoms, so the full
spectrum is 26 pairs; PE width 37 is kept from the official config.

Command: python -m experiments run spe --preset paper
"""

from experiments.spe.configs.cpu import get_config as _cpu


def get_config():
    c = _cpu()
    c.description = "official ZINC SPE config (GINE 4x128, rho GIN 8x128, 16 phi nets, PE 37) on MOSES 10k/1k/1k"
    c.expected_runtime = "~days on 2 CPU cores; hours on one GPU"
    c.n_train, c.n_val, c.n_test = 10_000, 1_000, 1_000
    c.hidden = 128
    c.n_layers = 4
    c.n_mlp_layers = 3
    c.pe_dims = 37
    c.n_phi = 16
    c.phi_hidden = 16
    c.rho_layers = 8
    c.rho_hidden = 128
    c.batch_size = 128
    c.num_epochs = 1000
    c.warmup_steps = 100
    c.eval_every = 78
    c.checkpoint_every = 7800
    return c

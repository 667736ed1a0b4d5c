"""paper preset: the official ZINC configuration (configs/zinc/SPE_gine_gin_mlp_pe37.yaml) on MOSES penalised logP.

Not run here (GPU-scale: 1000 epochs × 3 methods × 3 seeds). MOSES molecules have <= 26 heavy atoms, so the full
spectrum is 26 pairs; PE width 37 is kept from the official config.

Command: python -m experiments run spe --preset paper
"""

from experiments.spe.configs.cpu import get_config as _cpu


def get_config():
    c = _cpu()
    c.update(dict(description="official ZINC SPE config (GINE 4x128, rho GIN 8x128, 16 phi nets, PE 37) on MOSES "
                              "10k/1k/1k", expected_runtime="~days on 2 CPU cores; hours on one GPU"))
    c.update(dict(n_train=10_000, n_val=1_000, n_test=1_000, hidden=128, n_layers=4, n_mlp_layers=3, pe_dims=37,
                  n_phi=16, phi_hidden=16, rho_layers=8, rho_hidden=128))
    c.update(dict(batch_size=128, epochs=1000, warmup_steps=100, eval_every=78, checkpoint_every=7800))
    return c

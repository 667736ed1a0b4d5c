"""smoke preset: one tiny run of no-PE and of SPE (seconds). Command: python -m experiments run spe --preset smoke"""

from experiments.spe.configs.cpu import get_config as _cpu


def get_config():
    c = _cpu()
    c.update(dict(description="SPE smoke test: 64 train molecules, 1 seed, 2 steps each for no PE and SPE",
                  expected_runtime="~30 s on 2 CPU cores", n_train=64, n_val=16, n_test=16, seeds=(0,),
                  methods=("none", "spe"), epochs=1, batch_size=32, eval_batch_size=16, eval_every=0, warmup_steps=1))
    c.update(dict(hidden=16, n_layers=1, n_mlp_layers=1, pe_dims=4, n_phi=2, phi_hidden=4, rho_layers=1, rho_hidden=8))
    return c

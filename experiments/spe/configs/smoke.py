"""smoke preset: one tiny run of no-PE and of SPE (seconds). Command: python -m experiments run spe --preset smoke"""

from experiments.spe.configs.cpu import get_config as _cpu


def get_config():
    c = _cpu()
    c.description = "SPE smoke test: 64 train molecules, 1 seed, 2 steps each for no PE and SPE"
    c.expected_runtime = "~30 s on 2 CPU cores"
    c.n_train, c.n_val, c.n_test = 64, 16, 16
    c.seeds = (0,)
    c.methods = ("none", "spe")
    c.num_epochs = 1
    c.batch_size = 32
    c.eval_batch_size = 16
    c.hidden = 16
    c.n_layers = 1
    c.n_mlp_layers = 1
    c.pe_dims = 4
    c.n_phi = 2
    c.phi_hidden = 4
    c.rho_layers = 1
    c.rho_hidden = 8
    c.eval_every = 0
    c.warmup_steps = 1
    return c

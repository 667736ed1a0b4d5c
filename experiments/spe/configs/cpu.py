"""cpu preset: none / LapPE / SPE, 3 seeds each, all 9 runs in ~4-5 min on 2 CPU cores.

Smaller than the official ZINC setup (10k graphs, 1000 epochs, width 128, ρ 8 layers, 16 φ nets, 37 PE dims):
2,000 training molecules, 20 epochs, GINE width 64 (3 layers), SPE with 8 φ nets, ρ 2 layers of width 32, 16 PE dims,
full spectra (26 eigenpairs = the MOSES node budget).

Command: python -m experiments run spe --preset cpu
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = "GINE + {none, LapPE, SPE} on MOSES penalised logP (2k/500/500), 3 seeds, test MAE at best val"
    c.expected_runtime = "~4-5 min on 2 CPU cores (248 s measured)"
    # data
    c.n_train, c.n_val, c.n_test = 2000, 500, 500
    c.data_seed = 0
    c.max_nodes = 26          # MOSES: 8..26 heavy atoms
    c.num_eigs = 0            # 0 = full spectrum (k = max_nodes); otherwise the k smallest pairs
    c.ood_max_train_nodes = 0  # > 0: size shift, train/val on molecules with <= this many atoms, test on larger
    # methods / seeds
    c.methods = ("none", "lappe", "spe")
    c.seeds = (0, 1, 2)
    # backbone (official: 4 layers of 128, 3-layer MLPs with BN, mean pooling, residual)
    c.hidden = 64
    c.n_layers = 3
    c.n_mlp_layers = 2
    c.pooling = "mean"
    # SPE (paper names; official keys in brackets)
    c.pe_dims = 16            # [pe_dims] 37
    c.n_phi = 8               # [n_psis] 16
    c.phi_layers = 3          # [n_psi_layers] 3
    c.phi_hidden = 16         # [psi_hidden_dims] 16
    c.rho_layers = 2          # [n_phi_layers] 8
    c.rho_hidden = 32         # [phi_hidden_dims] 128
    c.bn_mode = "masked"      # or "official"
    # optimisation (official: Adam lr 1e-3, coupled L2 3e-6, warm-up 100, batch 128, L1 loss)
    c.batch_size = 64
    c.eval_batch_size = 128
    c.epochs = 20
    c.learning_rate = 1e-3
    c.weight_decay = 3e-6
    c.warmup_steps = 50
    # logging
    c.eval_every = 155        # ~5 epochs
    c.checkpoint_every = 0
    c.log_every = 100
    c.show_progress = True
    return c

"""cpu preset: none / LapPE / SignNet / SPE, 3 seeds each, on a ZINC-12k-sized split (10k / 1k / 1k MOSES molecules).

The split has the official ZINC subset's size; the model and schedule are reduced to fit all 12 runs in the 10-minute
cpu budget on 2 cores: 5 epochs (official: 1000), GINE width 64 (3 layers; official 4 × 128), SPE with 8 φ nets, ρ 2
layers of width 32, 16 PE dims (official 16 φ, ρ 8 × 128, PE 37); SignNet with the same GIN size; full spectra (26
eigenpairs = the MOSES node budget). SPE's ρ and SignNet's φ run on the real node-pair rows (``rho_layout``): the
whole preset took 369 s on the idle machine, 438 s with ``--config.rho_layout=dense`` (experiments/spe/README.md).

Command: python -m experiments run spe --preset cpu
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.description = ("GINE + {none, LapPE, SignNet, SPE} on MOSES penalised logP (10k/1k/1k), 3 seeds, 5 epochs, "
                     "test MAE at best val")
    c.expected_runtime = "~6-7 min on 2 CPU cores (369 s measured)"
    # data
    c.n_train, c.n_val, c.n_test = 10000, 1000, 1000
    c.data_seed = 0
    c.max_nodes = 26          # MOSES: 8..26 heavy atoms
    c.num_eigs = 0            # 0 = full spectrum (k = max_nodes); otherwise the k smallest pairs
    c.ood_max_train_nodes = 0  # > 0: size shift, train/val on molecules with <= this many atoms, test on larger
    # methods / seeds
    c.methods = ("none", "lappe", "signnet", "spe")
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
    c.rho_layout = "pairs"    # ρ on the real node pairs (Σ n² rows; needs bn_mode masked) or "dense" (B·N² rows)
    c.remat = False           # rematerialise ρ's layers (memory for time; not needed at this size)
    # optimisation (official: Adam lr 1e-3, coupled L2 3e-6, warm-up 100, batch 128, L1 loss)
    c.batch_size = 64
    c.eval_batch_size = 128
    c.epochs = 5
    c.learning_rate = 1e-3
    c.weight_decay = 3e-6
    c.warmup_steps = 50
    # logging
    c.eval_every = 156        # 1 epoch
    c.checkpoint_every = 0
    c.log_every = 100
    c.show_progress = True
    return c

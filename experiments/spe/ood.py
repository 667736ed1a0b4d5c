"""Out-of-distribution size shift: train / validate on MOSES molecules with <= 20 heavy atoms, test on the larger ones
(> 20), none / LapPE / SPE with the cpu-preset model and budget, one seed (an extra beyond the MAE table).

    python -m experiments.spe.ood --workdir /tmp/spe_ood
"""

from absl import app, flags

from experiments.spe.configs.cpu import get_config
from experiments.spe.train import train_and_evaluate

_WORKDIR = flags.DEFINE_string("workdir", "/tmp/spe_ood", "output directory")
_CUT = flags.DEFINE_integer("max_train_nodes", 20, "train/val on molecules with at most this many heavy atoms")


def main(argv):
    del argv
    c = get_config()
    c.n_train, c.n_val, c.n_test = 6000, 1500, 500  # before the size filter (~1/3 of MOSES has <= 20 atoms)
    c.ood_max_train_nodes = _CUT.value
    c.seeds = (0,)
    c.eval_every = 100
    print(train_and_evaluate(c, _WORKDIR.value))


if __name__ == "__main__":
    app.run(main)

"""The one CLI of every experiment's ``main.py``: absl flags + ml_collections config files (``--config``,
``--workdir``, config overrides such as ``--config.num_steps=10``)."""

from __future__ import annotations

import json
import pathlib
import sys


def experiment_main(method: str) -> None:
    from absl import app, flags
    from ml_collections import config_flags

    default = pathlib.Path(__file__).resolve().parent / method / "configs" / "cpu.py"
    config_flags.DEFINE_config_file("config", str(default), f"{method} config file (presets in configs/)")
    flags.DEFINE_string("workdir", None, "run directory (checkpoints, metrics); resumes if it holds a checkpoint")
    flags.mark_flags_as_required(["workdir"])

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        from eigenkit.train import initialize_distributed
        from experiments._registry import get_train_fn

        initialize_distributed()
        metrics = get_train_fn(method)(flags.FLAGS.config, flags.FLAGS.workdir)
        json.dump(metrics, sys.stdout, indent=2)
        print()

    app.run(main)

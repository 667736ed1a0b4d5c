"""python -m experiments.digits_mlp.main --workdir DIR [--config experiments/digits_mlp/configs/cpu.py]"""

from experiments._cli import experiment_main

if __name__ == "__main__":
    experiment_main("digits_mlp")

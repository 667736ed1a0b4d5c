"""python -m experiments.spe.main --workdir DIR [--config experiments/spe/configs/cpu.py]"""

from experiments._cli import experiment_main

if __name__ == "__main__":
    experiment_main("spe")

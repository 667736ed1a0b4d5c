"""python -m experiments.eora.main --workdir DIR [--config experiments/eora/configs/cpu.py]"""

from experiments._cli import experiment_main

if __name__ == "__main__":
    experiment_main("eora")

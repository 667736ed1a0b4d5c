"""python -m experiments.gcr.main --workdir DIR [--config experiments/gcr/configs/cpu.py]"""

from experiments._cli import experiment_main

if __name__ == "__main__":
    experiment_main("gcr")

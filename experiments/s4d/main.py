"""python -m experiments.s4d.main --workdir DIR [--config experiments/s4d/configs/cpu.py]"""

from experiments._cli import experiment_main

if __name__ == "__main__":
    experiment_main("s4d")

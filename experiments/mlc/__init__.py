"""MLC experiment: TCR pre-training, then MLC, clustering Fashion-MNIST (cpu) or CIFAR-10/20/100 (paper)."""

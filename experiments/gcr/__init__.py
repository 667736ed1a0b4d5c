"""GCR (Grassmann Class Representation, ICCV 2023) on Fashion-MNIST: accuracy, transferability, variability."""

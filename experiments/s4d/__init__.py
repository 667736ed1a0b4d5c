"""S4D experiments: sequential Fashion-MNIST (main; its paper preset is sequential CIFAR-10), the init ×
discretisation ablation study and the LRA ListOps study."""

STUDIES = ("ablation", "listops")

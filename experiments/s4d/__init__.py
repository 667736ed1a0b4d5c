"""S4D experiments: sequential Fashion-MNIST (main) and the init × discretisation ablation study."""

STUDIES = ("ablation",)

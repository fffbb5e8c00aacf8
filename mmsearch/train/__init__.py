"""Train: the two-tower model's training loop, its data and settings, what it watches on held-out data, and the
experiment trackers (MLflow, W&B)."""

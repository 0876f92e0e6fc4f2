"""The CAST trainer: configs, data, the training step, checkpoints, the run loop."""

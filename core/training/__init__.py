"""Training: stages planned by transfer strategies, the shared loop, checkpoints, devices."""

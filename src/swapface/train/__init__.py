"""Training: shared encoder, one decoder per identity, augmentation, losses, checkpoints."""

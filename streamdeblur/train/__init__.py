"""Training and evaluation toolchain: synthetic blur, dataset readers, losses, the training loop."""

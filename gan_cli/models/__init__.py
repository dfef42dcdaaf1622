"""Generators map z (N, z_dim) [and labels] to samples in the data's shape; discriminators map samples
[and labels] to one logit per sample, shape (N,). Images live in [-1, 1]."""

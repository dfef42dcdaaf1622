"""Data sources. Each gives samples in [-1, 1] with a fixed `shape`, optional integer labels, and an
endless, seeded, resumable stream of shuffled batches (`batches(batch_size, device, seed, start)`):
the DataSource protocol of gan_cli/data/batch.py."""

"""What happens around the training steps, one callback per job, composed by conf/callbacks/ (after
lightning-hydra-template's configs/callbacks): the time budget, scalars, pictures, evaluation with
best.pt, checkpoints, the live failure watch, TensorBoard hparams. The order of the config is the order
they run in after each step."""

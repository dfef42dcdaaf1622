"""Training algorithms, one module per family: what one step of training does. An algorithm owns its
named networks and their optimisers, and lists its phases; the loop (gan_cli/loop.py) runs the phases
and the callbacks (gan_cli/callbacks/) do everything else."""

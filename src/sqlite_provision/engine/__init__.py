"""What runs a plan: the executor (each step in order, undo on failure) and the run lock."""

"""The steps of a plan: each runs exactly from its own fields, registers how to undo what it
changed, and shows --dry-run the commands it runs. base.py holds Step and RunState."""

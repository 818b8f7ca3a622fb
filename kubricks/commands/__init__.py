"""Typer sub-commands, one module per lifecycle concern; wired together in kubricks.cli."""

"""What only `kubricks demo` runs: the three-month drift scenario, the story that serves,
monitors and retrains over it, and the champion served with a few HTTP predictions.

It sits above serving and beside components (pyproject.toml, ``[tool.importlinter]``): the
core never imports it, and only the commands do.
"""

"""The names of the registry's aliases: the one place they are spelled.

Apart from :mod:`kubricks.registry.store` (which imports MLflow and re-exports them) so
that light code, such as `kubricks status` and the inference log, can name them without
loading MLflow. Aliases only: MLflow 3 deprecates stages.
"""

from __future__ import annotations

CHAMPION = "champion"
CHALLENGER = "challenger"

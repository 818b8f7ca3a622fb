"""`pulumi up` entry point: read the stack settings, build the platform, export its outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubricks_infra.config import from_pulumi_config
from kubricks_infra.platform import Platform

platform = Platform("kubricks", from_pulumi_config())
for key, value in platform.outputs.items():
    pulumi.export(key, value)

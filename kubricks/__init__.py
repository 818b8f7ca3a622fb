"""Kubricks: the Databricks ML lifecycle from open-source parts."""

__version__ = "0.1.0"

"""Helpers the cluster acceptance workflow (.github/workflows) runs against the platform."""

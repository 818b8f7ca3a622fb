"""Batch scoring with registered models."""

"""Data drift checks and reports."""

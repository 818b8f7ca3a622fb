"""Bundled use-case specs (YAML). The package exists so the specs install with Kubricks."""

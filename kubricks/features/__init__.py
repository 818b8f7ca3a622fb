"""The Feast feature store over the gold Delta tables, generated from a use-case spec.

``store`` builds and applies the repository, ``training`` makes point-in-time correct
training sets, ``online`` materializes features and looks them up by key.
"""

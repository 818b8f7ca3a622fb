"""Everything that runs inside a server worker: from a request's bytes to its answer, hot swap
and the inference log (serving/README.md, "Layout")."""

"""Everything that runs outside the server: build the Bento, start and stop a local server, call
it, deploy it, render its Kubernetes objects (serving/README.md, "Layout")."""

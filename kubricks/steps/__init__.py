"""What runs inside a pipeline step: the step context, settings as environment, artifact content."""

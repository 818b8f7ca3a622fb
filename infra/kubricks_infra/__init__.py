"""The Kubricks cluster platform as small Pulumi components (one per platform part)."""

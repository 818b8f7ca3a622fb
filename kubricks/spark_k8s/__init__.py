"""Spark on Kubernetes: the SparkApplication a Spark step becomes, and the jobs it runs."""

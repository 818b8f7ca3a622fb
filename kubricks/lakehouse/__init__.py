"""The medallion lakehouse: bronze, silver and gold Delta tables."""

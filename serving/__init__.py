"""Real-time serving: the champion as a BentoML service, hot-swapped on promotion."""

"""The closed loop: decide from monitoring's alarm whether to retrain, take the lease,
retrain, hand the candidate to the gate and record every step.

Monitoring (:mod:`kubricks.monitoring`) measures drift and quality and knows nothing of
retraining; this package reads its result and acts on it.
"""

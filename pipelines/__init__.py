"""KFP pipelines composed from ``components``, and what runs them.

``training``, ``batch_inference`` and ``monitoring`` each declare ``PARAMETERS`` and
``build(settings)`` (through ``builder``); ``catalog`` finds them by name, ``compile``
writes their IR, ``local`` runs them with kfp.local and ``kfp_client`` on Kubeflow
Pipelines. Pipelines are built from settings (the project image, retries, the ConfigMap
and Secret names), so importing this package has no side effect.
"""

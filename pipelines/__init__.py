"""KFP pipelines composed from ``components``; each module's ``build(settings)`` returns one.

Pipelines are built from settings (the project image, retries, the ConfigMap and
Secret names), so importing this package has no side effect.
"""

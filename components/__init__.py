"""One KFP lightweight component per lifecycle step.

Each module holds the step function (its body imports Kubricks and calls tested
functions) and ``component(image)``, which wraps it as a component on the project
image. Importing a module has no side effect: components are built on demand.
"""

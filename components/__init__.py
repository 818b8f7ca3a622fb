"""One KFP lightweight component per lifecycle step, and how a task is dressed.

Each step module holds the step function (its body imports Kubricks and calls tested
functions) and ``component(image)``, which wraps it as a component on the project
image. ``tasks`` holds the build-time helpers every pipeline uses on those components
(resources, retries, settings wiring, the exit handler). Importing a module has no
side effect: components are built on demand.
"""

"""kubeverify: a pytest plugin that proves a Kubernetes Deployment and its Service work.

Any Deployment whose responses name their pod in a header: its replicas, scaling, the spread of
traffic over every pod, and its resilience, each verdict with its error rates stated. What to
verify is a target file (`kubeverify.target`); the stage is set by session fixtures
(`kubeverify.plugin`, through `kubeverify.stage`); the standard checks are `kubeverify.suites`;
Locust listeners are `kubeverify.locust`.
"""

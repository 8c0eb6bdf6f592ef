"""The Deployment heals and rolls while traffic runs (kubeverify's standard resilience checks)."""

from kubeverify import suites


class TestResilience(suites.Resilience):
    __doc__ = suites.Resilience.__doc__

"""The Deployment heals and rolls while traffic runs (kubeverify's standard resilience checks)."""

from kubeverify import Resilience


class TestResilience(Resilience):
    __doc__ = Resilience.__doc__

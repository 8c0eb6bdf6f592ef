"""ClientIP session affinity on the iris Service, and its negative control (kubeverify's
standard affinity checks)."""

from kubeverify import Affinity


class TestAffinity(Affinity):
    __doc__ = Affinity.__doc__

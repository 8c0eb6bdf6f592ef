"""ClientIP session affinity on the iris Service, and its negative control (kubeverify's
standard affinity checks)."""

from kubeverify import suites


class TestAffinity(suites.Affinity):
    __doc__ = suites.Affinity.__doc__

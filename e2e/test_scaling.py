"""Scaling by re-applying the Deployment, as the tutorial does, while traffic runs: 3 -> 2,
then 3 -> 5 (every pod answers, evenly) and back (kubeverify's standard scaling checks)."""

from kubeverify import suites


class TestScaling(suites.Scaling):
    __doc__ = suites.Scaling.__doc__

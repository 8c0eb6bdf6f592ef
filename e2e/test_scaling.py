"""Scaling by re-applying the Deployment, as the tutorial does, while traffic runs: 3 -> 2,
then 3 -> 5 (every pod answers, evenly) and back (kubeverify's standard scaling checks)."""

from kubeverify import Scaling


class TestScaling(Scaling):
    __doc__ = Scaling.__doc__

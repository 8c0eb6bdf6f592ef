from kubeverify import suites


class TestAffinity(suites.Affinity):
    __doc__ = suites.Affinity.__doc__

from kubeverify import suites


class TestResilience(suites.Resilience):
    __doc__ = suites.Resilience.__doc__

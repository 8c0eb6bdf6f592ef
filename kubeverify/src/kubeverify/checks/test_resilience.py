from kubeverify import Resilience


class TestResilience(Resilience):
    __doc__ = Resilience.__doc__

from kubeverify import Affinity


class TestAffinity(Affinity):
    __doc__ = Affinity.__doc__

from kubeverify import Replicas


class TestReplicas(Replicas):
    __doc__ = Replicas.__doc__

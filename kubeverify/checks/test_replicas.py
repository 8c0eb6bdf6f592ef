from kubeverify import suites


class TestReplicas(suites.Replicas):
    __doc__ = suites.Replicas.__doc__

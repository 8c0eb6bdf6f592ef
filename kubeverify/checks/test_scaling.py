from kubeverify import suites


class TestScaling(suites.Scaling):
    __doc__ = suites.Scaling.__doc__

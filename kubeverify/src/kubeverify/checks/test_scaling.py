from kubeverify import Scaling


class TestScaling(Scaling):
    __doc__ = Scaling.__doc__

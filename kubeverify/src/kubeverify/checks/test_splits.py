from kubeverify import Splits


class TestSplits(Splits):
    __doc__ = Splits.__doc__

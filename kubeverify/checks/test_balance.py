from kubeverify import suites


class TestBalance(suites.Balance):
    __doc__ = suites.Balance.__doc__

from kubeverify import Balance


class TestBalance(Balance):
    __doc__ = Balance.__doc__

from kubeverify import Shutdown


class TestShutdown(Shutdown):
    __doc__ = Shutdown.__doc__

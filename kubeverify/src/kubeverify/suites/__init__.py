"""The standard checks, as classes a test file subclasses to run them on its own target:

    from kubeverify import Scaling

    class TestScaling(Scaling):
        pass

Each assessment starts from the target's replica count, settled, every pod having answered
through the Service (the `settled_pods` fixture), and reads like the behaviour it checks. One
module per suite; its name is the suite's wherever it runs (a test file `test_<suite>.py`).
"""

from kubeverify.suites.affinity import Affinity
from kubeverify.suites.balance import Balance
from kubeverify.suites.replicas import Replicas
from kubeverify.suites.resilience import Resilience
from kubeverify.suites.scaling import Scaling
from kubeverify.suites.shutdown import Shutdown
from kubeverify.suites.splits import Splits

__all__ = ["Affinity", "Balance", "Replicas", "Resilience", "Scaling", "Shutdown", "Splits"]

"""Locust load test of the iris classifier: `locust -f loadtest/locustfile.py --host URL`.

Users post flowers from the iris data set (and the tutorial's sample) and now and then GET the
healthcheck. kubeverify's listeners count every answer per pod and node, add the options and
the verdict that becomes the exit code (`--help` lists them under "kubeverify").
"""

import random

from locust import FastHttpUser, events, task
from sklearn.datasets import load_iris

from kubeverify.locust import listeners
from service.schemas import TUTORIAL_SAMPLE

IRIS = load_iris()
# "sepal length (cm)" -> "sepal_length": the request schema's field names, in centimetres.
FIELDS = [name.removesuffix(" (cm)").replace(" ", "_") for name in IRIS.feature_names]
SAMPLES = [dict(zip(FIELDS, row, strict=True)) for row in IRIS.data.tolist()] + [TUTORIAL_SAMPLE]
CLASSES = {str(name) for name in IRIS.target_names}


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    parser.add_argument("--think-time", type=float, default=0.1, help="max pause between requests")


# FastHttpUser (geventhttpclient), not HttpUser (requests): on one core against one uvicorn
# worker here it sent 1,478 rps keep-alive and 1,076 with a new connection per request, where
# HttpUser managed 664 and 557 (bench/locust_capacity.py; HttpUser measured the same way).
class IrisUser(FastHttpUser):
    def on_start(self) -> None:
        self.headers = listeners.request_headers(self.environment)

    def wait_time(self) -> float:
        return random.uniform(0, self.environment.parsed_options.think_time)

    @task(10)
    def classify(self) -> None:
        sample = random.choice(SAMPLES)
        with self.client.post(
            "/iris/classify_iris", json=sample, headers=self.headers, catch_response=True
        ) as response:
            if problem := listeners.check(response, self.environment) or _class_problem(response):
                response.failure(problem)

    @task(1)
    def healthcheck(self) -> None:
        with self.client.get("/healthcheck", headers=self.headers, catch_response=True) as answer:
            if problem := listeners.check(answer, self.environment):
                answer.failure(problem)


def _class_problem(response) -> str | None:
    try:
        predicted = response.json().get("class")
    except (ValueError, AttributeError) as error:
        return f"answer is not a JSON object: {error}"
    return None if predicted in CLASSES else f"class {predicted!r} is none of {sorted(CLASSES)}"

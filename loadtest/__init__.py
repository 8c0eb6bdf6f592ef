"""Load tests of the iris classifier with Locust, and the verdict that lets CI gate on them.

`locust -f loadtest/locustfile.py` drives the load; everything that decides whether a run
passed lives in plain modules here (tally, verdict) so it is tested without Locust.
"""

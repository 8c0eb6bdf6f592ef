"""Locust support for any service whose answers name their pod.

`from kubeverify.locust import listeners` in a locustfile adds the options, the per-pod tally,
the web UI's Pods and Nodes tabs, and the verdict that becomes Locust's exit code;
`kubeverify.locust.cli` starts Locust headless and bounded.
"""

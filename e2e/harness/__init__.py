"""The e2e harness: provisioning, deploying, driving traffic, judging results: a module each."""

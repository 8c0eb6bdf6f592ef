"""The e2e harness: provisioning, deploying, driving traffic and judging results, one module each."""

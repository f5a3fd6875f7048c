"""The built-in local test network: test-mode proxy, client API, demand and simulated settlement."""

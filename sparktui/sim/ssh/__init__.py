"""SSH to the simulated Spark: the server, a real sh per session."""

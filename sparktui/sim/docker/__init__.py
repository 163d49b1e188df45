"""The simulated Docker Engine: containers, their logs and events, pulls, the API."""

"""What a Spark serves over HTTP besides Docker: a model server, its metrics, the dashboard."""

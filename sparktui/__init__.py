"""sparktui: a terminal UI for NVIDIA DGX Spark boxes."""

__version__ = "0.1.0"

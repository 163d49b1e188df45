"""A simulated DGX Spark: an SSH server on loopback whose shell is a real `sh`.

Nothing is imported here, so the stand-in tools (device/standin.py, which the
device root's bin/ runs) and the tests' stand-in nvidia-smi start quickly.
device/: the GPU and memory models, the device root (the files the product's
scripts and the stand-ins read) and the nvidia-smi views; ssh/: the server;
docker/: the Docker Engine the demo shows; servers/: the model server; http.py:
their one HTTP layer; demo.py: the demo's wiring.
"""

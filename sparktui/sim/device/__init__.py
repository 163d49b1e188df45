"""The simulated device itself: its GPU and memory models, its files (root.py over the fixed
files of rootfs/) and the stand-in tools over those files (standin.py: nvidia-smi through
nvsmi.py, docker, kill).

Imports nothing else of the simulator (the other sub-packages build on it)."""

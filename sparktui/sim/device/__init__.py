"""The simulated device itself: its GPU and memory models, its files (root.py over the fixed
files of rootfs/) and its one stand-in nvidia-smi (nvsmi.py).

Imports nothing else of the simulator (the other sub-packages build on it)."""

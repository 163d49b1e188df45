"""The simulated device itself: GPU and memory models, its files, its nvidia-smi.

Imports nothing else of the simulator (the other sub-packages build on it)."""

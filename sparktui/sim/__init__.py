"""A simulated DGX Spark: an SSH server on loopback whose shell is a real `sh`.

Nothing is imported here, so a stand-in tool (sim.standin, a copy per tool in the
device root's bin/) and `python -m sparktui.sim.device.fake_nvidia_smi` start quickly.
Modules: gpu_model and memory_model (state over time), device_root (the /proc,
/sys and /etc files the product's scripts read, the stand-ins on PATH), shell
(a real sh per SSH session), relay (the model's side of the stand-ins), nvsmi
(the nvidia-smi CLI), server (`start_sim`), cli (`sparktui sim`).
"""

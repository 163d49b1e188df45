"""A simulated DGX Spark: an SSH server on loopback, its nvidia-smi and host files.

Nothing is imported here, so `python -m sparktui.sim.fake_nvidia_smi` (a stand-in
run once per call) stays quick to start and never loads asyncssh.
Modules: gpu_model (state over time), nvsmi (the nvidia-smi CLI), hostfiles
(/proc, /etc, ps, kill), shell (the command dispatcher and the host-stat stream),
server (`start_sim`), cli (`sparktui sim`), fake_nvidia_smi (the stand-in script).
"""

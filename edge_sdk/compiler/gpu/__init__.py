"""GPU targets (NVIDIA Jetson via CUDA, Arm Mali via OpenCL): compute definitions, TVM's
default GPU schedules, device code, and the launch plan a small C runner replays."""

"""memsim: simulate memory hierarchies and the accelerators that run LLM workloads.

``import memsim`` is light: no torch, stable-baselines3 or matplotlib.
"""

__version__ = "0.1.0"

"""Allocator tuning is opt-in, and changes speed only, never results."""

from __future__ import annotations

import platform
import subprocess
import sys

# Records every use of glibc's mallopt in the process (ctypes is how it is reached).
SPY = """
import ctypes
calls = []
_CDLL = ctypes.CDLL
class SpyCDLL(_CDLL):  # attribute access goes through __getitem__
    def __getitem__(self, name):
        if name == "mallopt":
            calls.append(name)
        return _CDLL.__getitem__(self, name)
ctypes.CDLL = SpyCDLL
"""

RUN = """
import workloads, memsim
from hw_models import load_system
g = workloads.generate(workloads.load_model("llama2_7b"), batch=1, prompt_len=64, gen_len=4)
makespan = memsim.simulate(load_system("h100_sxm"), g, fidelity="analytic").makespan_s
"""


def _run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_simulate_does_not_touch_the_allocator() -> None:
    # a fresh process: simulate() twice (event and analytic) never reaches mallopt
    code = SPY + RUN + "\nmemsim.simulate(load_system('h100_sxm'), g)\nprint(len(calls))"
    assert _run(code) == ["0"]


def test_keep_freed_memory_is_opt_in_and_does_not_change_results() -> None:
    plain = _run(SPY + RUN + "\nprint(repr(makespan), len(calls))")
    tuned = _run(
        SPY
        + "from memsim.alloc import keep_freed_memory\nok = keep_freed_memory()\n"
        + RUN
        + "\nprint(repr(makespan), len(calls), ok)"
    )
    assert plain[1] == "0"
    on_glibc = platform.libc_ver()[0] == "glibc"
    # called explicitly it reaches mallopt and takes effect on glibc (a no-op elsewhere)
    assert tuned[1:] == (["1", "True"] if on_glibc else ["0", "False"])
    assert tuned[0] == plain[0]  # identical makespan, to the last bit

"""GPU microbenchmarks for calibration (``memsim measure``); torch is imported only at run time.

:mod:`memsim.measure.harness` is a standalone script (stdlib + torch only), copied
to a GPU machine as is or run in-process by ``memsim measure``.
"""

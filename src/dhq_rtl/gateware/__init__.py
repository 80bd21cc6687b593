"""Gateware of the accelerator: Amaranth 0.5 components.

Every block here is an :class:`amaranth.lib.wiring.Component` with
:mod:`amaranth.lib.stream` (valid/ready) ports and a numpy twin in
:mod:`dhq_rtl.fixedpoint` / :mod:`dhq_rtl.hadamard` / :mod:`dhq_rtl.golden`
that it equals bit for bit. Each module's docstring states the block's
latency, throughput and bit widths.
"""

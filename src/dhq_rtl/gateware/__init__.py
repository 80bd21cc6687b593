"""Gateware of the accelerator: Amaranth 0.5 components.

Every block here is an :class:`amaranth.lib.wiring.Component` with
:mod:`amaranth.lib.stream` (valid/ready) ports and a numpy or Python twin
(:mod:`dhq_rtl.fixedpoint` / :mod:`dhq_rtl.hadamard` / :mod:`dhq_rtl.golden`,
or one in its test) that it equals bit for bit. Each module's docstring
states the block's latency, throughput and bit widths.

* Datapath blocks: :mod:`.coords` (layer 0 as running sums), :mod:`.mac`
  (MAC array; :mod:`.ice40_dsp` for ``SB_MAC16``), :mod:`.scaler`,
  :mod:`.sine_lut`, :mod:`.butterfly`, :mod:`.requant`, :mod:`.fifo`;
  :mod:`.ram`: block-RAM read ports whose read-during-write data is
  undefined (no read-first logic in synthesis).
* The core (:mod:`.core`) and its parts: :mod:`.activation_buffers`,
  :mod:`.job_sequencer`, :mod:`.vector_arbiter`, :mod:`.postprocess`,
  :mod:`.pixel_queue`, linked by the payloads of :mod:`.core_streams`;
  :mod:`.plan` describes the core for a model (what it instantiates, and
  what the resource estimate counts), :mod:`.schedule` its cycles per pixel.
* The board top (:mod:`.top`, :mod:`.uart`); :mod:`.ooc`, the
  out-of-context timing harness for single blocks.
"""

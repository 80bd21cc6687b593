# amaranth: UnusedElaboratable=no
"""The out-of-context timing harness: only a few pins remain, every port is registered."""

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from dhq_rtl.gateware.ooc import ooc_harness


def test_ooc_harness_handles_stream_ports():
    class _Pass(wiring.Component):
        i: In(stream.Signature(data.StructLayout({"a": signed(5), "b": data.ArrayLayout(4, 3)})))
        o: Out(stream.Signature(17))

        def elaborate(self, platform):
            m = Module()
            m.d.comb += [self.o.payload.eq(self.i.payload.as_value()), self.o.valid.eq(self.i.valid),
                         self.i.ready.eq(self.o.ready)]
            return m

    text = rtlil.convert(ooc_harness(_Pass()), name="top")
    # Only si and so remain as ports of the top module; the 5+12+1+1 input bits
    # of the block hang off a 19-bit shift chain.
    top = text[text.index("module \\top"):]
    assert top.count(" input ") == 3 and top.count(" output ") == 1  # si, clk, rst / so
    assert "wire width 19 \\chain" in text




def test_ooc_harness_leaves_out_constant_ports():
    """An always_ready stream's ready is a constant: not driven, not reduced."""

    class _Flow(wiring.Component):
        i: In(stream.Signature(8, always_ready=True))
        o: Out(stream.Signature(8, always_ready=True))

        def elaborate(self, platform):
            m = Module()
            m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
            return m

    text = rtlil.convert(ooc_harness(_Flow()), name="top")
    assert "wire width 9 \\chain" in text      # payload and valid, no ready


def test_ooc_harness_rejects_a_plain_elaboratable():
    with pytest.raises(TypeError, match="Component"):
        ooc_harness(Module())

"""Board descriptions and the board list."""

import pytest

from dhq_rtl.boards import BOARD_NAMES, all_boards, get_board
from dhq_rtl.build import board_table, main
from dhq_rtl.errors import BoardError
from dhq_rtl.gateware.top import ecp5_pll_params, ice40_pll_params


def test_every_board_loads_its_platform():
    for board in all_boards():
        assert board.name in BOARD_NAMES
        platform = board.platform()
        assert platform.device == board.device
        for key in board.budget:
            assert key in board.pnr_names


def test_unknown_board_is_a_board_error():
    with pytest.raises(BoardError, match="unknown board 'nope'.*icebreaker"):
        get_board("nope")


def test_board_list_shows_budgets(capsys):
    assert main(["--board", "list"]) == 0
    out = capsys.readouterr().out
    assert "icebreaker" in out and "(default)" in out and "DSP 8" in out and "ulx3s" in out
    assert out.strip() == board_table().strip()


def test_ice40_pll_48mhz_from_12mhz():
    divr, divf, divq, fr, f = ice40_pll_params(12e6, 48e6)
    assert f == pytest.approx(12e6 * (divf + 1) / ((divr + 1) * 2 ** divq))
    assert abs(f - 48e6) < 0.01 * 48e6
    pfd = 12e6 / (divr + 1)
    assert 10e6 <= pfd <= 133e6 and 533e6 <= pfd * (divf + 1) <= 1066e6
    with pytest.raises(ValueError, match="cannot make"):
        ice40_pll_params(12e6, 5e6)


def test_ecp5_pll_50mhz_from_25mhz():
    clki, fb, op, f = ecp5_pll_params(25e6, 50e6)
    assert f == pytest.approx(50e6)
    assert 400e6 <= f * op <= 800e6


def test_uart_loopback_every_byte_value():
    from amaranth.hdl import Module
    from dhq_rtl.gateware.uart import UartRx, UartTx, uart_divisor
    from tests.testbench import run_sim

    assert uart_divisor(48e6, 1_000_000) == 48
    with pytest.raises(ValueError):
        uart_divisor(12e6, 6_000_000)
    tx, rx = UartTx(5), UartRx(5)
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx
    m.d.comb += rx.rx.eq(tx.tx)
    sent = list(range(256))
    got = []

    async def tb(ctx):
        pending = list(sent)
        for _ in range(256 * 60):
            if pending:
                ctx.set(tx.data.valid, 1)
                ctx.set(tx.data.payload, pending[0])
            else:
                ctx.set(tx.data.valid, 0)
            _, _, ready, valid, byte = await ctx.tick().sample(tx.data.ready, rx.data.valid, rx.data.payload)
            if pending and ready:
                pending.pop(0)
            if valid:
                got.append(byte)
            if len(got) == len(sent):
                break

    run_sim(m, [tb])
    assert got == sent


@pytest.mark.parametrize("divisor", [4, 5, 16])
def test_uart_tx_bit_timing_back_to_back(divisor):
    """Each byte is 10 bits of exactly ``divisor`` cycles (start, 8 data LSB
    first, stop), and the next byte is taken in the idle cycle after the
    stop bit's last: the line, cycle by cycle, for two bytes sent back to
    back."""
    from dhq_rtl.gateware.uart import UartTx
    from tests.testbench import run_sim

    tx = UartTx(divisor)
    data = [0xA5, 0x3C]
    line, accepted = [], []

    async def tb(ctx):
        pending = list(data)
        for cycle in range(2 + 2 * 10 * divisor + 4):
            ctx.set(tx.data.valid, bool(pending))
            ctx.set(tx.data.payload, pending[0] if pending else 0)
            _, _, ready, level = await ctx.tick().sample(tx.data.ready, tx.tx)
            line.append(level)
            if pending and ready:
                accepted.append(cycle)
                pending.pop(0)

    run_sim(tx, [tb])
    expect = []
    for byte in data:
        expect += [1]   # the idle cycle the byte is taken in
        for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
            expect += [bit] * divisor
    assert accepted == [0, 10 * divisor + 1]
    assert line[:len(expect)] == expect and all(line[len(expect):])

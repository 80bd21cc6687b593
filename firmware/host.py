"""Host tool: render the image on the board over the UART and save it as a PNG.

::

    python -m dhq_rtl.firmware.host --port /dev/ttyUSB1 [--baud 1000000] [--out image.png]

Protocol (see :mod:`dhq_rtl.gateware.top`): ``b"I"`` → 9 bytes ``b"DHQ"``,
width, height (u16 LE), channels, pixel_bits; ``b"R"`` → every pixel in raster
order, one byte per channel (two, little-endian, if pixel_bits > 8).
Needs pyserial (``pip install dhq_rtl[host]``); on the iCEBreaker the
accelerator's UART is the FTDI's second port (``/dev/ttyUSB1`` on Linux).
"""

import time

import numpy as np

from dhq_rtl.cli import ArgumentParser, run_main
from dhq_rtl.errors import DhqError

__all__ = ["decode_info", "decode_pixels", "render_on_board", "main"]


def _serial():
    try:
        import serial
    except ImportError:
        raise DhqError("the host tool needs pyserial: pip install pyserial (or pip install dhq_rtl[host])") from None
    return serial


def decode_info(data):
    """``(width, height, channels, pixel_bits)`` from the 9-byte info answer."""
    if len(data) != 9 or data[:3] != b"DHQ":
        raise DhqError(f"the board did not answer the info command (got {bytes(data)!r}); "
                       f"is the bitstream loaded and the port right?")
    return (int.from_bytes(data[3:5], "little"), int.from_bytes(data[5:7], "little"), data[7], data[8])


def decode_pixels(data, width, height, channels, pixel_bits):
    """The image array ``(height, width, channels)`` from the pixel bytes."""
    if pixel_bits <= 8:
        arr = np.frombuffer(bytes(data), dtype=np.uint8)
    else:
        arr = np.frombuffer(bytes(data), dtype="<u2")
    if arr.size != width * height * channels:
        raise DhqError(f"expected {width * height * channels} values, got {arr.size}")
    return arr.reshape(height, width, channels)


def render_on_board(port, baud=1_000_000, timeout=10.0):
    """Ask the board for its image; returns ``(image, seconds, pixel_bits)``."""
    serial = _serial()
    try:
        ser = serial.Serial(port, baud, timeout=timeout)
    except serial.SerialException as e:
        raise DhqError(f"cannot open {port}: {e}") from None
    with ser:
        ser.reset_input_buffer()
        ser.write(b"I")
        w, h, c, pb = decode_info(ser.read(9))
        n = w * h * c * (1 if pb <= 8 else 2)
        t0 = time.monotonic()
        ser.write(b"R")
        data = ser.read(n)
        seconds = time.monotonic() - t0
        if len(data) != n:
            raise DhqError(f"the board sent {len(data)} of {n} bytes before the {timeout} s timeout")
    return decode_pixels(data, w, h, c, pb), seconds, pb


def main(argv=None):
    from dhq_rtl.images import save_png
    from dhq_rtl.outputs import check_output_file, is_png

    p = ArgumentParser(prog="python -m dhq_rtl.firmware.host", description=__doc__.split("\n")[0])
    p.add_argument("--port", required=True, help="serial port of the board (e.g. /dev/ttyUSB1)")
    p.add_argument("--baud", type=int, default=1_000_000, help="UART baud rate of the bitstream (default 1000000)")
    p.add_argument("--out", default="board.png", help="PNG to write (default board.png)")
    args = p.parse_args(argv)
    if args.baud <= 0:
        raise DhqError(f"--baud must be a positive integer, got {args.baud}")
    # Checked before the board is asked: a bad path costs nothing.
    check_output_file(args.out, f"--out {args.out}", inputs={"--port": args.port}, keeps=(is_png, "a PNG"))
    img, seconds, pixel_bits = render_on_board(args.port, args.baud)
    save_png(img, args.out, pixel_bits)
    print(f"{img.shape[1]}x{img.shape[0]} image in {seconds:.2f} s → {args.out}")
    return 0


if __name__ == "__main__":
    run_main(main)

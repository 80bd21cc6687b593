// Cycle-accurate simulation of a board: the core with its host link
// (module `dhq_top`, a dhq_rtl.gateware.top.LinkedCore), its UART driven at
// bit level, controlled by the host through pipes.
//
// Usage:  board_driver DIVISOR
//
// DIVISOR is the board's UART divisor (clock cycles per bit, the real one).
// Requests on stdin (little-endian):
//   'W' u32 N, N bytes     queue bytes for the board's receive line
//   'R' u32 N, u64 C       run until N bytes came from the board's transmit
//                          line or C cycles passed; reply: u64 cycles run,
//                          u32 n, n bytes
//   'Q'                    quit
// While the board is idle (its `idle` output: no command in progress, no
// frame half received, no byte on either line) and nothing is queued, a
// simulated cycle changes nothing; 'R' then skips the rest of its cycles
// instead of simulating them (the reply counts them as run).
//
// Cycle protocol as in driver.cpp: inputs set with the clock low, the
// model settles, outputs sampled, then the clock rises. The receive line is
// 8N1: a start bit, 8 data bits LSB first, a stop bit, DIVISOR cycles each;
// the transmit line is decoded the same way (sampled in the middle of each
// bit). stderr: "error: ..." on a malformed request, exit status 2.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <vector>

#if defined(DHQ_VERILATOR)
#include "Vdhq_top.h"
#include "verilated.h"

struct Dut {
    VerilatedContext context;
    Vdhq_top *top;
    Dut() { top = new Vdhq_top(&context); top->clk = 0; top->rst = 0; top->uart_rx = 1; top->eval(); }
    ~Dut() { top->final(); delete top; }
    void set_inputs(bool rx) { top->clk = 0; top->uart_rx = rx; top->eval(); }
    bool tx() const { return top->uart_tx; }
    bool idle() const { return top->idle; }
    void rise() { top->clk = 1; top->eval(); }
};

#elif defined(DHQ_CXXRTL)
#include "dhq_top.h"

struct Dut {
    cxxrtl_design::p_dhq__top top;
    Dut() { top.p_clk.set<bool>(false); top.p_rst.set<bool>(false); top.p_uart__rx.set<bool>(true); top.step(); }
    void set_inputs(bool rx) { top.p_clk.set<bool>(false); top.p_uart__rx.set<bool>(rx); top.step(); }
    bool tx() const { return top.p_uart__tx.get<bool>(); }
    bool idle() const { return top.p_idle.get<bool>(); }
    void rise() { top.p_clk.set<bool>(true); top.step(); }
};

#else
#error "define DHQ_VERILATOR or DHQ_CXXRTL"
#endif

static bool read_exact(void *buf, size_t n) { return fread(buf, 1, n, stdin) == n; }

template <typename T> static T read_le() {
    T v = 0;
    unsigned char b[sizeof(T)];
    if (!read_exact(b, sizeof(T))) { fprintf(stderr, "error: truncated request\n"); exit(2); }
    for (size_t i = 0; i < sizeof(T); i++) v |= (T)b[i] << (8 * i);
    return v;
}

template <typename T> static void write_le(T v) {
    unsigned char b[sizeof(T)];
    for (size_t i = 0; i < sizeof(T); i++) b[i] = (unsigned char)(v >> (8 * i));
    fwrite(b, 1, sizeof(T), stdout);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "error: usage: %s DIVISOR\n", argv[0]); return 2; }
    const long divisor = strtol(argv[1], nullptr, 10);
    if (divisor < 4) { fprintf(stderr, "error: DIVISOR must be at least 4\n"); return 2; }
    Dut *dut = new Dut();
    std::deque<unsigned char> to_board;
    // Transmit line of the host (the board's receive line).
    int tx_bit = -1;           // -1: idle; 0 start bit, 1..8 data, 9 stop
    long tx_count = 0;
    unsigned char tx_byte = 0;
    // Receive line of the host (the board's transmit line).
    int rx_bit = -1;           // -1: waiting for a start bit
    long rx_wait = 0;
    unsigned rx_value = 0;
    for (;;) {
        int op = fgetc(stdin);
        if (op == EOF || op == 'Q') break;
        if (op == 'W') {
            uint32_t n = read_le<uint32_t>();
            std::vector<unsigned char> data(n);
            if (n && !read_exact(data.data(), n)) { fprintf(stderr, "error: truncated data\n"); return 2; }
            to_board.insert(to_board.end(), data.begin(), data.end());
            continue;
        }
        if (op != 'R') { fprintf(stderr, "error: unknown request %d\n", op); return 2; }
        const uint32_t want = read_le<uint32_t>();
        const uint64_t max_cycles = read_le<uint64_t>();
        std::vector<unsigned char> got;
        uint64_t n = 0;
        while (n < max_cycles && got.size() < want) {
            if (tx_bit < 0 && to_board.empty() && rx_bit < 0 && dut->idle()) {
                n = max_cycles;        // an idle board: nothing would change
                break;
            }
            if (tx_bit < 0 && !to_board.empty()) {
                tx_byte = to_board.front();
                to_board.pop_front();
                tx_bit = 0;
                tx_count = 0;
            }
            bool level = true;
            if (tx_bit == 0) level = false;
            else if (tx_bit >= 1 && tx_bit <= 8) level = (tx_byte >> (tx_bit - 1)) & 1;
            dut->set_inputs(level);
            if (tx_bit >= 0 && ++tx_count == divisor) {
                tx_count = 0;
                if (++tx_bit == 10) tx_bit = -1;
            }
            const bool line = dut->tx();
            if (rx_bit < 0) {
                if (!line) { rx_bit = 0; rx_wait = divisor + divisor / 2 - 1; rx_value = 0; }
            } else if (rx_wait) {
                rx_wait--;
            } else if (rx_bit < 8) {
                rx_value |= (unsigned)line << rx_bit;
                rx_bit++;
                rx_wait = divisor - 1;
            } else {
                if (line) got.push_back((unsigned char)rx_value);
                rx_bit = -1;
            }
            dut->rise();
            n++;
        }
        write_le<uint64_t>(n);
        write_le<uint32_t>((uint32_t)got.size());
        if (!got.empty()) fwrite(got.data(), 1, got.size(), stdout);
        fflush(stdout);
    }
    delete dut;
    return 0;
}

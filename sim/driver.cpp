// Cycle-accurate driver of the accelerator core (module `dhq_top`), compiled
// together with the model that Verilator (-DDHQ_VERILATOR) or CXXRTL
// (-DDHQ_CXXRTL) generated from the core's RTL.
//
// Usage:  driver REGION NPIX STALL_THRESHOLD SEED IDLE_LIMIT
//
//   REGION           the packed `region` port value (decimal)
//   NPIX             number of pixel beats the region must produce
//   STALL_THRESHOLD  0 .. 2^32: `pixels.ready` is low in cycle n when
//                    (splitmix64(SEED + (n+1)·φ) >> 32) < STALL_THRESHOLD
//   SEED             seed of the stall pattern (decimal, 64-bit)
//   IDLE_LIMIT       give up after this many cycles without a pixel beat
//
// Cycle n = 0, 1, ... is the n-th rising clock edge counted from the one
// that samples `start`. In every cycle the inputs are set, the model settles,
// the outputs are sampled (a beat happens when valid & ready) and then the
// clock rises. This is exactly what the Python testbench of
// dhq_rtl.simulate.pysim does, so both engines report the same cycle numbers.
//
// stdout: one 16-byte record per beat, little-endian: u64 cycle, u64 payload.
// stderr: a final line "done cycles=C busy_cycles=B ns=T" (C = last beat's
// cycle + 1, B = first cycle ≥ C in which busy is low, T = wall time of the
// simulation loop) or "error: ..." with exit status 3.

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#if defined(DHQ_VERILATOR)
// Verilator spells the double underscore of `pixels__ready` as `___05F`.
#include "Vdhq_top.h"
#include "verilated.h"

struct Dut {
    VerilatedContext context;
    Vdhq_top *top;
    Dut() { top = new Vdhq_top(&context); top->clk = 0; top->rst = 0; top->eval(); }
    ~Dut() {
        top->final();
#if VM_COVERAGE
        // Activity runs (dhq_rtl.rtlsim.activity): the toggle counts, written
        // where the environment says.
        if (const char *path = getenv("DHQ_COVERAGE_FILE")) context.coveragep()->write(path);
#endif
        delete top;
    }
    void set_inputs(bool start, uint64_t region, bool ready) {
        top->clk = 0;
        top->start = start;
        top->region = region;
        top->pixels___05Fready = ready;
        top->eval();
    }
    bool valid() const { return top->pixels___05Fvalid; }
    bool busy() const { return top->busy; }
    uint64_t payload() const { return (uint64_t)top->pixels___05Fpayload; }
    void rise() { top->clk = 1; top->eval(); }
};

#elif defined(DHQ_CXXRTL)
#include "dhq_top.h"

struct Dut {
    cxxrtl_design::p_dhq__top top;
    Dut() { top.p_clk.set<bool>(false); top.p_rst.set<bool>(false); top.step(); }
    void set_inputs(bool start, uint64_t region, bool ready) {
        top.p_clk.set<bool>(false);
        top.p_start.set<bool>(start);
        top.p_region.set<uint64_t>(region);
        top.p_pixels____ready.set<bool>(ready);
        top.step();
    }
    bool valid() const { return top.p_pixels____valid.get<bool>(); }
    bool busy() const { return top.p_busy.get<bool>(); }
    uint64_t payload() const { return top.p_pixels____payload.get<uint64_t>(); }
    void rise() { top.p_clk.set<bool>(true); top.step(); }
};

#else
#error "define DHQ_VERILATOR or DHQ_CXXRTL"
#endif

static uint64_t splitmix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static bool ready_in_cycle(uint64_t seed, uint64_t threshold, uint64_t n) {
    if (threshold == 0) return true;
    return (splitmix64(seed + (n + 1) * 0x9E3779B97F4A7C15ULL) >> 32) >= threshold;
}

static uint64_t parse_u64(const char *text, const char *what) {
    char *end = nullptr;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *end) {
        fprintf(stderr, "error: %s must be a decimal integer, got '%s'\n", what, text);
        exit(2);
    }
    return (uint64_t)v;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "error: usage: %s REGION NPIX STALL_THRESHOLD SEED IDLE_LIMIT\n", argv[0]);
        return 2;
    }
    const uint64_t region = parse_u64(argv[1], "REGION");
    const uint64_t npix = parse_u64(argv[2], "NPIX");
    const uint64_t threshold = parse_u64(argv[3], "STALL_THRESHOLD");
    const uint64_t seed = parse_u64(argv[4], "SEED");
    const uint64_t idle_limit = parse_u64(argv[5], "IDLE_LIMIT");
    if (threshold >= (1ULL << 32)) {
        fprintf(stderr, "error: STALL_THRESHOLD must be below 2^32\n");
        return 2;
    }

    Dut *dut = new Dut();
    std::vector<uint64_t> chunk;
    chunk.reserve(2 * 256);
    uint64_t beats = 0, n = 0, last_beat = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (; beats < npix; n++) {
        const bool ready = ready_in_cycle(seed, threshold, n);
        dut->set_inputs(n == 0, region, ready);
        if (ready && dut->valid()) {
            chunk.push_back(n);
            chunk.push_back(dut->payload());
            beats++;
            last_beat = n;
            if (chunk.size() == 2 * 256 || beats == npix) {
                fwrite(chunk.data(), sizeof(uint64_t), chunk.size(), stdout);
                fflush(stdout);
                chunk.clear();
            }
        } else if (n - last_beat > idle_limit) {
            fprintf(stderr, "error: no pixel for %" PRIu64 " cycles (cycle %" PRIu64 ", %" PRIu64
                    " of %" PRIu64 " pixels received)\n", idle_limit, n, beats, npix);
            return 3;
        }
        dut->rise();
    }
    // `busy` must fall once the last pixel has been accepted.
    const uint64_t cycles = n;
    uint64_t busy_cycles = n;
    for (;; n++) {
        dut->set_inputs(false, region, ready_in_cycle(seed, threshold, n));
        if (!dut->busy()) { busy_cycles = n; break; }
        if (n - last_beat > idle_limit) {
            fprintf(stderr, "error: busy still high %" PRIu64 " cycles after the last pixel\n", idle_limit);
            return 3;
        }
        dut->rise();
    }
    const auto t1 = std::chrono::steady_clock::now();
    const long long ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    fprintf(stderr, "done cycles=%" PRIu64 " busy_cycles=%" PRIu64 " ns=%lld\n", cycles, busy_cycles, ns);
    delete dut;
    return 0;
}

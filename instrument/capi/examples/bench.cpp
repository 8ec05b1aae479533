// The cost of a span through frameline.hpp (g++ -O2, linking libframeline_capi.a), next to the
// floor (a 16-byte timestamp + id push into a thread-local buffer, as in the Rust benches).
// Run by instrument/capi/bench.sh, which then runs the Rust span bench for comparison.
//
//   bench LAKE [spans_per_run]   -> "cpp/floor <ns>" and "cpp/span <ns>" (best of 15 runs)
#include "frameline.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <x86intrin.h>

namespace {

constexpr size_t kBufferBytes = 1 << 20;

struct Floor {
    std::vector<unsigned char> buffer;
    size_t len = 0;
    Floor() : buffer(kBufferBytes) {}
    inline void push(uint64_t id) {
        if (len + 16 > kBufferBytes) len = 0;
        const uint64_t record[2] = {__rdtsc(), id};
        std::memcpy(buffer.data() + len, record, 16);
        len += 16;
    }
};

thread_local Floor floor_buffer;

__attribute__((noinline)) void floor_span() {
    floor_buffer.push(1);
    floor_buffer.push(1);
}

__attribute__((noinline)) void frameline_span() { FL_SCOPE("bench.span"); }

template <class F> double best_ns_per_call(F f, long calls) {
    double best = 1e30;
    for (int run = 0; run < 15; ++run) {
        auto start = std::chrono::steady_clock::now();
        for (long i = 0; i < calls; ++i) f();
        auto end = std::chrono::steady_clock::now();
        double ns = std::chrono::duration<double, std::nano>(end - start).count() / calls;
        if (ns < best) best = ns;
    }
    return best;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s LAKE [spans_per_run]\n", argv[0]);
        return 2;
    }
    const long calls = argc > 2 ? std::atol(argv[2]) : 2000000;
    fl::Session session(argv[1]);
    if (!session.ok()) return 1;
    std::printf("cpp/floor %.2f ns\n", best_ns_per_call(floor_span, calls));
    std::printf("cpp/span %.2f ns\n", best_ns_per_call(frameline_span, calls));
    return 0;
}

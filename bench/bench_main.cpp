// sp_bench: Google Benchmark families for every hot path, each beside its reference.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();

#!/usr/bin/env bash
# The test suite under sanitizers (.ci/run runs it after tools/test.sh; assumes tools/setup.sh --test ran):
#   build-asan: every test with AddressSanitizer + UndefinedBehaviorSanitizer (leaks included), CPU backend
#               (CUDA kernels are not instrumented by these sanitizers and no GPU is assumed);
#   build-tsan: the tests that start threads of their own (loader workers and prefetch, the C++ API's compute
#               thread, mae serve's HTTP workers, pretraining) under ThreadSanitizer, with OMP_NUM_THREADS=1:
#               Debian's libgomp is not instrumented, so TSan cannot see its barriers and would report every
#               parallel loop.
#   tools/sanitize.sh [address|thread]   (default: both)
set -euo pipefail
# the body is one { } group, parsed whole before it runs: editing this file during a run cannot shift what bash reads
{
cd "$(dirname "$0")/.."
which=${1:-both}
supp=$PWD/tools/sanitizer_suppressions
# halt on the first finding; leaks of the MPI/hwloc/OpenBLAS runtimes (not ours) are suppressed in lsan.supp
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"

# -O1 -g1 (line tables): half the compile time of -O2 -g on 2 cores, and stack traces keep file:line
opt=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
case $which in both|address|thread) ;; *) echo "sanitize.sh: address, thread or nothing (both), not '$which'" >&2; exit 2 ;; esac
t0=$SECONDS
if [ "$which" = both ] || [ "$which" = address ]; then
  cmake -S . -B build-asan -G Ninja -DMAE_TESTS=ON -DMAE_CUDA=OFF -DMAE_SANITIZE=address "${opt[@]}" >/dev/null
  ninja -C build-asan
  # fuzz_smoke builds its own ASan fuzzer; the rest runs as in tools/test.sh, slower
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 1200 -E "^fuzz_smoke$"
fi
if [ "$which" = both ] || [ "$which" = thread ]; then
  cmake -S . -B build-tsan -G Ninja -DMAE_TESTS=ON -DMAE_CUDA=OFF -DMAE_WITH_MPI=OFF -DMAE_SANITIZE=thread \
    "${opt[@]}" >/dev/null
  ninja -C build-tsan mae test_data test_api
  # the tests run with OMP_NUM_THREADS=1 in this build (tests/CMakeLists.txt)
  ctest --test-dir build-tsan --output-on-failure -j2 --timeout 1200 \
    -R "^(Loader|Dataset|Api)\.|^(serve_http|classify_cli|pretrain_cli)$"
fi
echo "sanitize.sh: $which done in $((SECONDS - t0)) s"
exit
}

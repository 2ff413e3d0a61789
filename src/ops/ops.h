// The engine's op interface: the same op set (op_decls.inc) in two backends.
//   mae::ref — plain loops, written to be obviously right: the specification the other backends are tested against.
//   mae::cpu — BLAS (sgemm/dgemm) for the GEMMs, OpenMP over rows/heads, fused element-wise loops.
// Every op is instantiated for float and double (double drives the finite-difference tests).
#pragma once
#include <cstddef>

namespace mae::ref {
#include "ops/op_decls.inc"
}  // namespace mae::ref

namespace mae::cpu {
#include "ops/op_decls.inc"
}  // namespace mae::cpu

// Whether the CPU backend runs a block stack's forward and backward in row tiles (model/vit_blocks.cpp): the batch
// split into tiles of whole samples, each OpenMP thread taking tiles through every block with the ops
// single-threaded inside (OpenBLAS and the ops' own OpenMP loops run on one thread within a parallel region). No
// thread waits for another between ops, and a tile's element-wise passes read what its GEMM just wrote, still in
// cache.
#pragma once

namespace mae::cpu {

// The threads to tile over, or 1: no tiling. 1 with one thread, inside a parallel region already, under
// --precision bf16 (the bf16 operand copies live in process-wide scratch buffers) and while the op profiler is on
// (its registry has no lock, and it times ops, which tiles interleave).
int row_tile_threads();

// On by default; tests and `mae bench --row_tiles off|ab` switch it off to compare the tiled blocks with the
// untiled ones.
void set_row_tiles(bool on);

}  // namespace mae::cpu

// Files of the data layer (PNG pictures, shard indexes, shards) written whole or not at all. (The io layer has its
// own atomic writer for checkpoints; data may not include io: docs/architecture.md §1.)
#pragma once
#include <cstdio>
#include <functional>
#include <string>

namespace mae {

// body(FILE*) writes a temp file beside `path` ("<path>.tmp.<pid>.<n>"), which is then flushed, fsynced and renamed
// over path: readers (another rank, another run) see the old file or the whole new one. On any failure the temp
// file is removed and mae::Error "cannot write <path>: <why>" thrown; an Error thrown by body gives the why.
// The folder must exist.
void replace_file(const std::string& path, const std::function<void(FILE*)>& body);

// fwrite that throws mae::Error (with errno's text) on a short write, for bodies of replace_file.
void write_or_fail(FILE* f, const void* data, size_t n);

}  // namespace mae

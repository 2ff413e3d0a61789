// Atomic file replacement: readers of `path` see either the old file or the complete new one, never a torn write,
// and a failed write (full disk, crash, exception in the body) leaves the old file as it was.
#pragma once
#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>

#include "core/error.h"

namespace mae::io {

// Thrown by write_all (and friends) for a failed write; write_file_atomic catches it and rethrows a mae::Error that
// names the file. Carries errno so the message can say e.g. "No space left on device".
struct WriteError : Error {
  int err;
  explicit WriteError(int e, const char* what_failed = "write failed");
};

// fwrite that throws WriteError (with errno) on a short write. Bodies of write_file_atomic should use it.
void write_all(FILE* f, const void* data, size_t n);

// Creates "<path>.tmp.<pid>" in the same folder, runs body(FILE*) on it, checks for write errors, fflush + fsync,
// closes, renames it over `path` and fsyncs the folder. On any failure (including an exception thrown by body) the
// temp file is removed and `path` is untouched; errors are mae::Error "<path>: <what failed>: <errno text>".
// Exceptions from body other than WriteError are rethrown unchanged after the cleanup.
void write_file_atomic(const std::string& path, const std::function<void(FILE*)>& body);

// The temp file a write_file_atomic of this process is writing now, or nullptr. Async-signal-safe: a handler that
// ends the process at once (a second SIGTERM) unlinks it so that no temp file is left behind.
const char* temp_file_in_progress();

// Convenience: atomically replace `path` with `bytes`.
void write_file_atomic(const std::string& path, const std::string& bytes);

// A folder made whole or not at all: body(tmp) fills the fresh folder "<dir>.tmp.<pid>", which is then renamed to
// `dir`. An existing `dir` is an error unless `replace` (it is then swapped out and removed after the rename). On any
// failure the temp folder is removed and `dir` is as it was; errors are mae::Error naming `dir`.
void write_folder_atomic(const std::string& dir, bool replace, const std::function<void(const std::string&)>& body);

}  // namespace mae::io

// Reading a whole file for the checkpoint readers (safetensors, zip/.pth): mmapped when it is a regular file,
// read into an exact-size buffer otherwise (pipes) and under AddressSanitizer, so that overruns are reported
// instead of reading a mapping's zero tail.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace mae::io {

// A run of bytes with whatever keeps them alive (a file mapping, or a buffer).
struct Bytes {
  std::shared_ptr<const void> hold;
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// Throws "<path>: cannot open: <errno text>", "<path>: is a directory, not a file" and the like.
Bytes read_file_bytes(const std::string& path);

}  // namespace mae::io

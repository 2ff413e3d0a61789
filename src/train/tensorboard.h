// TensorBoard event files without TensorFlow or a protobuf runtime: the few messages a scalar log needs are
// hand-encoded, framed as TFRecords (length, masked CRC32C of the length, data, masked CRC32C of the data), as
// torch.utils.tensorboard.SummaryWriter writes them, so `tensorboard --logdir` reads our runs next to PyTorch's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace mae {

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), continuing from crc (0 to start).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, so a CRC of data holding CRCs stays useful.
uint32_t masked_crc32c(const void* data, size_t n);

// TensorBoard event file writer (events.out.tfevents.<time>.<host>), as torch.utils.tensorboard.SummaryWriter
// writes it. Not thread-safe: one writer per process (rank 0), called from the training loop.
class TensorBoardWriter {
 public:
  // Creates dir if needed and opens a NEW event file in it (never truncates another file); throws mae::Error
  // naming the dir and the reason when it cannot (unwritable dir etc.).
  explicit TensorBoardWriter(const std::string& dir);
  // Closing flushes too, but its errors are lost (a destructor cannot throw): call flush() to see them.
  ~TensorBoardWriter() = default;
  TensorBoardWriter(TensorBoardWriter&&) noexcept = default;
  TensorBoardWriter& operator=(TensorBoardWriter&&) noexcept = default;

  void add_scalar(const std::string& tag, double value, int64_t step);  // a Summary with one simple_value
  void flush();  // fflush (no fsync): called at epoch ends and before exit; throws mae::Error naming the file
  const std::string& path() const { return path_; }

 private:
  struct Close {
    void operator()(std::FILE* f) const { std::fclose(f); }  // flushes what is buffered
  };
  void write_record(const std::string& data);  // TFRecord framing around one serialized Event
  std::string path_;
  std::unique_ptr<std::FILE, Close> file_;
};

}  // namespace mae

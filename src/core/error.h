// Errors: every failure the user can cause (bad file, bad flag, bad shape) throws mae::Error with a message that
// names the file/flag and the problem; main() prints it and exits non-zero. MAE_CHECK adds file:line for internal
// invariants.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace mae {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... A> std::string cat(const A&... a) {
  std::ostringstream s;
  (s << ... << a);
  return s.str();
}
}  // namespace detail

// fail("file ", path, ": header length ", n, " runs past the end") -> throws mae::Error
template <class... A> [[noreturn]] void fail(const A&... a) { throw Error(detail::cat(a...)); }

}  // namespace mae

#define MAE_CHECK(cond, ...)                                                                              \
  do {                                                                                                    \
    if (!(cond)) ::mae::fail(__FILE__, ":", __LINE__, ": check failed: " #cond " " __VA_OPT__(, ) __VA_ARGS__); \
  } while (0)

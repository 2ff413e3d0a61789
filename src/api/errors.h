// How the API's failures become mae::api::Error: mae::Error raised before the compute thread runs (arguments,
// images, files, a model without the ability) is the caller's fault (bad_input); a failure inside a forward or
// anything else is internal; the API's own errors (busy, ...) pass as they are.
#pragma once
#include <new>
#include <stdexcept>

#include "core/error.h"
#include "mae/mae.h"

namespace mae::api_internal {

// A failure inside a forward: never the caller's input (that is checked before a job is queued).
struct ComputeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class F> auto translate_errors(F&& f) -> decltype(f()) {
  using api::Error;
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const ComputeError& e) {
    throw Error(Error::Kind::internal, e.what());
  } catch (const mae::Error& e) {
    throw Error(Error::Kind::bad_input, e.what());
  } catch (const std::bad_alloc&) {
    throw Error(Error::Kind::internal, "out of memory");
  } catch (const std::exception& e) {
    throw Error(Error::Kind::internal, e.what());
  }
}

}  // namespace mae::api_internal

// mae serve: the HTTP face of the C++ API (include/mae/mae.h) on cpp-httplib.
//   GET  /             the page (src/serve/page.html, embedded at build time; works offline)
//   GET  /health       {"status": "ok"}
//   GET  /info         what is loaded and what the server can do, with its limits
//   POST /reconstruct  image, mask_ratio, seed[, format=json] → the four-panel PNG (or JSON with it and the
//                      per-patch loss)
//   POST /embed        image (repeatable), pool=cls|mean → features as JSON
//   POST /classify     image (repeatable), topk → top classes as JSON (with --classifier)
// Images come as multipart/form-data fields named `image` (other fields as form fields or query parameters), or as
// the raw body (Content-Type image/png, image/jpeg or application/octet-stream) with the parameters in the query.
// Every error is a JSON object {"error": message, "status": code}: 4xx for the request's fault, 503 when the model is
// busy past the limits, 500 otherwise; the server keeps serving.
#pragma once
#include <cstdint>
#include <string>

namespace mae::serve {

struct ServeOptions {
  std::string checkpoint, classifier, model;  // model: preset for files without config (as --model)
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (printed)
  int workers = 4;  // HTTP worker threads (decode, resize, PNG) around the one compute thread
  int threads = 0;  // compute threads (0: OMP_NUM_THREADS or all cores)
  int max_batch = 8;
  int max_queue = 64;           // images waiting for the model before requests get 503
  int max_images = 16;          // images in one request
  uint64_t max_body_bytes = 16u << 20;
  uint64_t max_pixels = 1u << 25;  // of all images of a request, each checked from its header (33.5 Mpx)
  double timeout_s = 30;        // waiting for the model (503 after), and reading/writing a request's bytes
  std::string device = "cpu", precision = "fp32";
};

// Loads the models, binds, prints "mae serve: listening on http://HOST:PORT/" to stdout and serves until SIGINT or
// SIGTERM. Throws mae::Error for bad options, a model that fails to load or an address that cannot be bound.
void run_server(const ServeOptions& o);

}  // namespace mae::serve

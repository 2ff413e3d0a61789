#include "serve/server.h"

#include <httplib.h>
#include <pthread.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "core/limits.h"
#include "mae/mae.h"
#include "serve/page.h"  // generated from src/serve/page.html: kPageHtml

namespace mae::serve {
namespace {

using json = nlohmann::json;
using httplib::Request;
using httplib::Response;

// Bounds of the flags themselves.
constexpr int kMaxWorkers = 256, kMaxImagesPerRequest = 1024;
constexpr uint64_t kMaxBodyBytes = limits::kImageFileBytes;

// An error the request caused, with its status.
struct HttpError : std::runtime_error {
  int status;
  HttpError(int s, const std::string& m) : std::runtime_error(m), status(s) {}
};
template <class... A> [[noreturn]] void reject(int status, const A&... a) {
  throw HttpError(status, detail::cat(a...));
}

void send_error(Response& res, int status, const std::string& msg) {
  res.status = status;
  res.set_content(json{{"error", msg}, {"status", status}}.dump(), "application/json");
}

// ----------------------------------------------------------------------------------------- request fields

// The images and the named values of a request, from its multipart parts or raw body and its query string. Every
// name must be one the endpoint takes and appear once (images excepted); sizes are bounded by the options.
struct Fields {
  std::vector<const std::string*> images;  // bytes of each image, owned by the request
  std::map<std::string, std::string> values;
};

bool raw_image_type(const std::string& ct) {
  const std::string t = ct.substr(0, ct.find(';'));
  return t == "image/png" || t == "image/jpeg" || t == "application/octet-stream";
}

Fields read_fields(const Request& req, const std::vector<std::string>& names, int max_images) {
  Fields f;
  std::string takes = "image";
  for (const auto& n : names) takes += ", " + n;
  auto put = [&](const std::string& name, const std::string& value) {
    if (std::find(names.begin(), names.end(), name) == names.end())
      reject(400, "unknown field '", name, "': ", req.path, " takes ", takes);
    if (!f.values.emplace(name, value).second) reject(400, "field '", name, "' given twice");
  };
  if (req.is_multipart_form_data()) {
    for (const auto& [name, part] : req.files) {
      if (name == "image")
        f.images.push_back(&part.content);
      else
        put(name, part.content);
    }
  } else if (raw_image_type(req.get_header_value("Content-Type"))) {
    f.images.push_back(&req.body);
  } else if (!req.body.empty()) {
    reject(415, "send images as multipart/form-data fields named 'image', or one image as the raw body with "
                "Content-Type image/png or image/jpeg (got Content-Type '", req.get_header_value("Content-Type"), "')");
  }
  for (const auto& [name, value] : req.params) {
    if (name == "image") reject(400, "'image' must be a file part or the body, not a query parameter");
    put(name, value);
  }
  if (f.images.empty()) reject(400, "no image: send a multipart field named 'image' (", req.path, " takes ", takes, ")");
  if (int(f.images.size()) > max_images)
    reject(413, f.images.size(), " images in one request is more than the limit of ", max_images);
  return f;
}

template <class T> T parse_int(const Fields& f, const std::string& name, T dflt, T lo, T hi) {
  auto it = f.values.find(name);
  if (it == f.values.end()) return dflt;
  const std::string& s = it->second;
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi)
    reject(400, "field '", name, "': '", s.substr(0, 40), "' is not an integer in [", lo, ", ", hi, "]");
  return v;
}

double parse_double(const Fields& f, const std::string& name, double dflt) {
  auto it = f.values.find(name);
  if (it == f.values.end()) return dflt;
  const std::string& s = it->second;
  char* end = nullptr;
  const double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v))
    reject(400, "field '", name, "': '", s.substr(0, 40), "' is not a number");
  return v;
}

std::string parse_choice(const Fields& f, const std::string& name, const std::vector<std::string>& choices) {
  auto it = f.values.find(name);
  if (it == f.values.end()) return choices[0];
  if (std::find(choices.begin(), choices.end(), it->second) == choices.end()) {
    std::string c;
    for (const auto& x : choices) c += (c.empty() ? "" : ", ") + x;
    reject(400, "field '", name, "': '", it->second.substr(0, 40), "' is not one of ", c);
  }
  return it->second;
}

// The images of a request share one pixel budget (each image's size is checked from its header against what is left
// before it is decoded): a request holds at most max_pixels decoded pixels, whatever its image count.
std::vector<api::Pixels> decode_all(const Fields& f, uint64_t max_pixels) {
  std::vector<api::Pixels> out;
  out.reserve(f.images.size());
  std::string name;
  uint64_t used = 0;
  for (size_t k = 0; k < f.images.size(); k++) {
    if (used >= max_pixels) reject(413, "the images of this request hold more than the limit of ", max_pixels, " pixels");
    name = "#";  // appended piece by piece: "#" + std::string makes GCC 12 warn falsely (-Wrestrict)
    name += std::to_string(k + 1);
    name += " of the request";
    out.push_back(api::decode_image(f.images[k]->data(), f.images[k]->size(), max_pixels - used, name));
    used += uint64_t(out.back().width) * uint64_t(out.back().height);
  }
  return out;
}

std::string base64(const std::vector<uint8_t>& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8 | in[i + 2];
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += t[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint32_t(in[i]) << 16;
    out += t[v >> 18], out += t[(v >> 12) & 63], out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8;
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += '=';
  }
  return out;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// ----------------------------------------------------------------------------------------------- the server

class Server {
 public:
  explicit Server(const ServeOptions& o) : o_(o) {
    api::ModelOptions mo;
    mo.model = o.model, mo.device = o.device, mo.precision = o.precision, mo.threads = o.threads;
    mo.max_batch = o.max_batch, mo.max_queue = o.max_queue, mo.timeout_s = o.timeout_s;
    model_ = api::Model::load(o.checkpoint, mo);
    if (!o.classifier.empty()) {
      classifier_ = api::Model::load(o.classifier, mo);
      if (!classifier_->info().can_classify)
        fail("--classifier ", o.classifier, ": not a fine-tuned classifier (it is ",
             classifier_->info().kind == "mae" ? "an MAE" : "an encoder-only", " checkpoint)");
    }
    if (model_->info().kind == "classifier" && !classifier_) classifier_ = std::move(model_);
    routes();
  }

  httplib::Server& http() { return svr_; }
  const api::Model* model() const { return model_.get(); }
  const api::Model* classifier() const { return classifier_.get(); }

 private:
  using Handler = void (Server::*)(const Request&, Response&);

  // Every handler's failures become a JSON error; the request's time is logged when it fails.
  httplib::Server::Handler wrap(Handler h) {
    return [this, h](const Request& req, Response& res) {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        (this->*h)(req, res);
      } catch (const HttpError& e) {
        send_error(res, e.status, e.what());
      } catch (const api::Error& e) {
        send_error(res, e.kind() == api::Error::Kind::bad_input ? 400 : e.kind() == api::Error::Kind::busy ? 503 : 500,
                   e.what());
      } catch (const std::bad_alloc&) {
        send_error(res, 500, "out of memory");
      } catch (const std::exception& e) {
        send_error(res, 500, e.what());
      }
      if (res.status >= 400)
        std::fprintf(stderr, "%s %s → %d (%.0f ms): %s\n", req.method.c_str(), req.path.c_str(), res.status,
                     std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
                     res.body.substr(0, 200).c_str());
    };
  }

  void routes() {
    const std::vector<std::pair<std::string, std::string>> endpoints = {
        {"/", "GET"}, {"/health", "GET"}, {"/info", "GET"},
        {"/reconstruct", "POST"}, {"/embed", "POST"}, {"/classify", "POST"}};
    svr_.Get("/", [](const Request&, Response& res) { res.set_content(kPageHtml, "text/html; charset=utf-8"); });
    svr_.Get("/health", [](const Request&, Response& res) { res.set_content(R"({"status":"ok"})", "application/json"); });
    svr_.Get("/info", wrap(&Server::info));
    svr_.Post("/reconstruct", wrap(&Server::reconstruct));
    svr_.Post("/embed", wrap(&Server::embed));
    svr_.Post("/classify", wrap(&Server::classify));
    // The other methods on known paths: 405 naming the one that works (httplib alone would answer 404).
    for (const auto& [path, method] : endpoints) {
      auto wrong = [path, method](const Request& req, Response& res) {
        res.set_header("Allow", method);
        send_error(res, 405, req.method + " " + path + ": method not allowed (use " + method + ")");
      };
      if (method == "GET") svr_.Post(path, wrong);
      if (method == "POST") svr_.Get(path, wrong);
      svr_.Put(path, wrong), svr_.Delete(path, wrong), svr_.Patch(path, wrong);
    }
    // httplib's own refusals (no route, a malformed or truncated request, a body over the limit) as JSON too
    svr_.set_error_handler([this](const Request& req, Response& res) {
      if (!res.body.empty()) return;
      std::string msg = res.status == 414 ? "request URI too long"
                        : res.status == 431 ? "request headers too large"
                        : res.status >= 500 ? "internal error"
                                            : "bad request";
      if (res.status == 404) msg = "no such endpoint: " + req.method + " " + req.path + " (see GET /info)";
      if (res.status == 413) msg = "request body over the limit of " + std::to_string(o_.max_body_bytes) + " bytes";
      if (res.status == 400)
        msg = "malformed request (a truncated or invalid multipart body, a POST without Content-Length?)";
      send_error(res, res.status, msg);
    });
    svr_.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
      send_error(res, 500, "internal error");
    });
  }

  void info(const Request&, Response& res) {
    json j = {{"service", "mae serve"},
              {"endpoints",
               {{"GET /", "the page"},
                {"GET /health", "liveness"},
                {"GET /info", "this"},
                {"POST /reconstruct", "image, mask_ratio, seed, format=png|json → four-panel PNG (json: with the "
                                      "per-patch loss)"},
                {"POST /embed", "image (repeatable), pool=cls|mean → features"},
                {"POST /classify", "image (repeatable), topk → top classes"}}},
              {"limits",
               {{"max_body_bytes", o_.max_body_bytes},
                {"max_pixels", o_.max_pixels},
                {"max_images", o_.max_images},
                {"max_batch", o_.max_batch},
                {"max_queue", o_.max_queue},
                {"timeout_s", o_.timeout_s},
                {"workers", o_.workers}}}};
    j["model"] = model_ ? json::parse(model_->info_json()) : json(nullptr);
    j["classifier"] = classifier_ ? json::parse(classifier_->info_json()) : json(nullptr);
    j["can"] = {{"reconstruct", model_ && model_->info().can_reconstruct},
                {"embed", model_ && model_->info().can_embed},
                {"classify", classifier_ != nullptr}};
    res.set_content(j.dump(), "application/json");
  }

  static api::Model& need(api::Model* m, const std::string& what) {
    if (!m)
      reject(404, what, " is not available: ",
             what == "classify" ? "start the server with --classifier FINETUNED" : "the --checkpoint is a classifier");
    return *m;
  }

  void reconstruct(const Request& req, Response& res) {
    api::Model& m = need(model_.get(), "reconstruct");
    if (!m.info().can_reconstruct)
      reject(409, "this model cannot reconstruct: ", m.info().path, " has no decoder (an encoder-only checkpoint)");
    const Fields f = read_fields(req, {"mask_ratio", "seed", "format"}, 1);
    const double ratio = parse_double(f, "mask_ratio", 0.75);
    const uint64_t seed = parse_int<uint64_t>(f, "seed", 0, 0, UINT64_MAX);
    const bool as_json = parse_choice(f, "format", {"png", "json"}) == "json";
    const auto images = decode_all(f, o_.max_pixels);
    const api::Reconstruction r = m.reconstruct(images, ratio, seed)[0];
    const api::Pixels grid = api::four_panels(r);
    std::vector<uint8_t> png = api::encode_png(grid);
    if (!as_json) {
      res.set_content(reinterpret_cast<const char*>(png.data()), png.size(), "image/png");
      return;
    }
    res.set_content(json{{"png_base64", base64(png)},
                         {"width", grid.width},
                         {"height", grid.height},
                         {"mask_ratio", ratio},
                         {"seed", seed},
                         {"grid", r.grid},
                         {"loss", r.loss},
                         {"mask", r.mask},
                         {"patch_loss", r.patch_loss}}
                        .dump(),
                    "application/json");
  }

  void embed(const Request& req, Response& res) {
    api::Model& m = need(model_.get(), "embed");
    const Fields f = read_fields(req, {"pool"}, o_.max_images);
    const bool mean = parse_choice(f, "pool", {"cls", "mean"}) == "mean";
    const auto feats = m.embed(decode_all(f, o_.max_pixels), mean ? api::Pool::mean : api::Pool::cls);
    res.set_content(json{{"pool", mean ? "mean" : "cls"}, {"dim", m.info().embed_dim}, {"features", feats}}.dump(),
                    "application/json");
  }

  void classify(const Request& req, Response& res) {
    api::Model& m = need(classifier_.get(), "classify");
    const Fields f = read_fields(req, {"topk"}, o_.max_images);
    // more than the classes: all of them (as the API does)
    const int topk = parse_int<int>(f, "topk", 5, 1, int(limits::kClasses));
    const auto top = m.classify(decode_all(f, o_.max_pixels), topk);
    json results = json::array();
    for (const auto& t : top) {
      json one = json::array();
      for (const auto& c : t) one.push_back({{"index", c.index}, {"name", c.name}, {"prob", c.prob}});
      results.push_back(one);
    }
    res.set_content(json{{"results", results}}.dump(), "application/json");
  }

  const ServeOptions o_;
  std::unique_ptr<api::Model> model_, classifier_;
  httplib::Server svr_;
};

void check_options(const ServeOptions& o) {
  if (o.port < 0 || o.port > 65535) fail("--port must be in [0, 65535] (0: any free port), got ", o.port);
  if (o.workers < 1 || o.workers > kMaxWorkers) fail("--workers must be in [1, ", kMaxWorkers, "], got ", o.workers);
  if (o.max_images < 1 || o.max_images > kMaxImagesPerRequest)
    fail("--max_images must be in [1, ", kMaxImagesPerRequest, "], got ", o.max_images);
  if (o.max_body_bytes < 1024 || o.max_body_bytes > kMaxBodyBytes)
    fail("--max_body_mb must give between 1 KiB and ", kMaxBodyBytes >> 20, " MiB, got ", o.max_body_bytes, " bytes");
  if (o.max_pixels < 1 || o.max_pixels > limits::kImagePixels)
    fail("--max_pixels must be in [1, ", limits::kImagePixels, "], got ", o.max_pixels);
  if (!(o.timeout_s >= 1 && o.timeout_s <= 3600)) fail("--timeout must be in [1, 3600] seconds, got ", o.timeout_s);
}

}  // namespace

void run_server(const ServeOptions& o) {
  check_options(o);
  // SIGINT/SIGTERM go to one thread that stops the server: blocked here, before any thread exists (the model's
  // compute thread, httplib's workers inherit the mask).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Server server(o);
  httplib::Server& svr = server.http();
  svr.new_task_queue = [n = o.workers] { return new httplib::ThreadPool(size_t(n)); };
  svr.set_payload_max_length(size_t(o.max_body_bytes));
  svr.set_read_timeout(time_t(o.timeout_s));
  svr.set_write_timeout(time_t(o.timeout_s));
  svr.set_keep_alive_timeout(2);  // an idle keep-alive connection holds a worker: let it go soon

  int port = o.port;
  if (port == 0) {
    port = svr.bind_to_any_port(o.host);
    if (port < 0) fail("cannot bind to ", o.host, " (any port)");
  } else if (!svr.bind_to_port(o.host, port)) {
    fail("cannot bind to ", o.host, ":", port, " (in use, or not an address of this machine)");
  }
  if (!is_loopback(o.host))
    std::fprintf(stderr, "mae serve: WARNING: listening on %s, not loopback: anyone who can reach this machine can "
                         "use the model (no authentication, no TLS); put a proxy in front for more than a trusted "
                         "network\n",
                 o.host.c_str());
  auto describe = [](const api::Model* m) { return m ? m->info().path + " (" + m->info().kind + ")" : std::string("-"); };
  std::fprintf(stderr, "mae serve: model %s, classifier %s; %d workers, batch %d, body ≤ %llu bytes, %llu px\n",
               describe(server.model()).c_str(), describe(server.classifier()).c_str(), o.workers, o.max_batch,
               (unsigned long long)o.max_body_bytes, (unsigned long long)o.max_pixels);
  const std::string shown = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  std::printf("mae serve: listening on http://%s:%d/\n", shown.c_str(), port);
  std::fflush(stdout);

  std::atomic<bool> signalled{false};
  std::thread stopper([&svr, &signalled, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    signalled = true;
    svr.stop();
  });
  const bool ok = svr.listen_after_bind();
  if (!signalled) pthread_kill(stopper.native_handle(), SIGTERM);  // wakes the stopper: the server ended on its own
  stopper.join();
  if (!ok && !signalled) fail("the server stopped with an error");
  std::fprintf(stderr, "mae serve: stopped\n");
}

}  // namespace mae::serve

// mae serve: a trained model as an HTTP service and a web page (src/serve/server.h).
#include "cli/common.h"
#include "core/error.h"
#include "serve/server.h"

namespace mae::cli {

void add_serve(CLI::App& app) {
  auto o = std::make_shared<serve::ServeOptions>();
  auto mb = std::make_shared<double>(double(o->max_body_bytes) / (1 << 20));
  auto* c = app.add_subcommand("serve", "Serve a model over HTTP: a web page, /reconstruct, /embed, /classify");
  c->footer(
      "Open http://HOST:PORT/ in a browser: pick or drop an image, move the mask-ratio slider, draw a new mask, see "
      "original | masked | reconstruction | reconstruction + visible, and the top classes with --classifier. The page "
      "is self-contained (works offline). The HTTP endpoints are listed by GET /info. Loopback (127.0.0.1) by "
      "default: binding another address prints a warning, as there is no authentication or TLS. Requests over the "
      "limits get a 4xx JSON error; a full queue or a wait over --timeout a 503. Stops on SIGINT/SIGTERM.");
  c->add_option("--checkpoint", o->checkpoint,
                "MAE weights (with the decoder for /reconstruct), any format mae reads; or a fine-tuned classifier")
      ->required();
  c->add_option("--classifier", o->classifier, "A fine-tuned classifier (mae finetune) for /classify");
  c->add_option("--model", o->model, "Preset name, for weights without config metadata (official .pth)");
  c->add_option("--host", o->host, "Address to bind (loopback by default)")->capture_default_str();
  c->add_option("--port", o->port, "Port (0: any free port, printed)")->capture_default_str();
  c->add_option("--workers", o->workers, "HTTP worker threads (decode, resize, PNG; the forward has its own thread)")
      ->capture_default_str();
  c->add_option("--threads", o->threads, "Compute threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str();
  c->add_option("--max_batch,--max-batch", o->max_batch, "Images in one forward (concurrent requests are batched)")
      ->capture_default_str();
  c->add_option("--max_queue,--max-queue", o->max_queue, "Images waiting for the model before requests get 503")
      ->capture_default_str();
  c->add_option("--max_images,--max-images", o->max_images, "Images in one request")->capture_default_str();
  c->add_option("--max_body_mb,--max-body-mb", *mb, "Request body limit, MiB")->capture_default_str();
  c->add_option("--max_pixels,--max-pixels", o->max_pixels,
                "Decoded pixels of one request, all its images together (each checked from its header)")
      ->capture_default_str();
  c->add_option("--timeout", o->timeout_s, "Seconds a request may wait for the model (503 after), or take to send")
      ->capture_default_str();
  c->add_option("--device", o->device, "cpu, or cuda in CUDA builds")->capture_default_str();
  c->add_option("--precision", o->precision, "fp32, or bf16 (CUDA; on the CPU with avx512_bf16 or AMX and oneDNN)")
      ->capture_default_str();
  c->callback([o, mb] {
    if (!(*mb > 0 && *mb <= 1024)) fail("--max_body_mb must be in (0, 1024], got ", *mb);
    o->max_body_bytes = uint64_t(*mb * (1 << 20));
    serve::run_server(*o);
  });
}

}  // namespace mae::cli

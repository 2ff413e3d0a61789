// Runs an ONNX model in ONNX Runtime (npm onnxruntime-node, CPU execution provider): the runtime side of
// tests/onnx_export.sh and of the README's ONNX Runtime speed figure (bench/onnx_vs_embed.sh).
//   node tests/ort_run.js MODEL.onnx IMAGES.f32 N C H W OUTDIR [THREADS] [BENCH_RUNS]
// IMAGES.f32: raw little-endian float32 (N, C, H, W), already normalised. Writes OUTDIR/<output>.f32 (raw float32)
// for every output and prints one JSON line: {"outputs": {name: dims}, "metadata": {...}, "images_per_s": x}.
// With BENCH_RUNS > 0 the forward is timed over that many runs after 2 warm-up runs (intra-op threads THREADS).
// The module is found through NODE_PATH (the test points it at test-tools/node_modules).
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, n, c, h, w, outdir, threadsArg, benchArg] = process.argv.slice(2);
  const dims = [n, c, h, w].map(Number);
  const threads = Number(threadsArg || 0), runs = Number(benchArg || 0);
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`${input}: ${data.length} floats for ${dims}`);
  const opts = {executionProviders: ['cpu'], graphOptimizationLevel: 'all'};
  if (threads > 0) Object.assign(opts, {intraOpNumThreads: threads, interOpNumThreads: 1});
  const session = await ort.InferenceSession.create(model, opts);
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, dims)};
  const result = await session.run(feeds);
  const outputs = {};
  for (const name of session.outputNames) {
    const t = result[name];
    outputs[name] = t.dims;
    fs.writeFileSync(path.join(outdir, `${name}.f32`), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  let imagesPerS = null;
  if (runs > 0) {
    for (let k = 0; k < 2; k++) await session.run(feeds);
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < runs; k++) await session.run(feeds);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    imagesPerS = (runs * dims[0]) / s;
  }
  console.log(JSON.stringify({outputs, images_per_s: imagesPerS}));
}

main().catch((e) => {
  console.error(`ort_run.js: ${e.message || e}`);
  process.exit(1);
});

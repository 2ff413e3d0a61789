// The public C++ API (include/mae/mae.h): what a loaded file reports, calls from many threads at once (queued to one
// compute thread and batched) give the answers of calls made one at a time, reconstructions are eval/reconstruct's,
// and every misuse is an Error of kind bad_input.
#include <gtest/gtest.h>

#include <thread>

#include "mae/mae.h"

namespace {

using mae::api::Error;
using mae::api::Model;
using mae::api::Pixels;

const std::string kA = std::string(MAE_SOURCE_DIR) + "/tests/fixtures/cfgA.weights.safetensors";  // 28 px, 1 channel

Pixels pattern(int w, int h, int c, int salt) {
  Pixels p;
  p.width = w, p.height = h, p.channels = c;
  p.data.resize(size_t(w) * h * c);
  for (size_t i = 0; i < p.data.size(); i++) p.data[i] = uint8_t((i * 37 + salt * 101 + (i / w) * 13) % 251);
  return p;
}

template <class F> Error::Kind kind_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no mae::api::Error thrown";
  return Error::Kind::internal;
}

TEST(Api, InfoOfAnMaeCheckpoint) {
  const auto m = Model::load(kA);
  const auto& i = m->info();
  EXPECT_EQ(i.kind, "mae");
  EXPECT_EQ(i.img_size, 28);
  EXPECT_EQ(i.in_chans, 1);
  EXPECT_EQ(i.embed_dim, 32);
  EXPECT_TRUE(i.can_embed && i.can_reconstruct && !i.can_classify);
  EXPECT_EQ(i.mean.size(), 1u);
  EXPECT_NE(m->info_json().find("\"img_size\":28"), std::string::npos) << m->info_json();
}

TEST(Api, ConcurrentCallsEqualSingleCalls) {
  mae::api::ModelOptions o;
  o.max_batch = 4, o.threads = 1;
  const auto m = Model::load(kA, o);
  const int kImages = 6;
  std::vector<Pixels> imgs;
  for (int k = 0; k < kImages; k++) imgs.push_back(pattern(k % 2 ? 28 : 40, 28 + 3 * k, k % 3 ? 3 : 1, k));
  std::vector<std::vector<float>> cls, mean;
  std::vector<mae::api::Reconstruction> r50, r75;
  for (int k = 0; k < kImages; k++) {
    cls.push_back(m->embed({imgs[k]})[0]);
    mean.push_back(m->embed({imgs[k]}, mae::api::Pool::mean)[0]);
    r50.push_back(m->reconstruct({imgs[k]}, 0.5, k)[0]);
    r75.push_back(m->reconstruct({imgs[k]}, 0.75, k)[0]);
  }
  // Several images in one call, as several calls
  const auto both = m->embed({imgs[0], imgs[1], imgs[2], imgs[3], imgs[4]});  // more than max_batch: in chunks
  for (int k = 0; k < 5; k++)
    for (size_t d = 0; d < cls[k].size(); d++) ASSERT_NEAR(both[k][d], cls[k][d], 1e-5);

  std::vector<std::thread> threads;
  std::vector<int> bad(8, 0);
  for (int t = 0; t < 8; t++)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 4; rep++) {
        const int k = (t + rep) % kImages;
        const auto c = m->embed({imgs[k]})[0];
        const auto mm = m->embed({imgs[k]}, mae::api::Pool::mean)[0];
        const auto r = m->reconstruct({imgs[k]}, (t + rep) % 2 ? 0.5 : 0.75, k)[0];
        const auto& want = (t + rep) % 2 ? r50[k] : r75[k];
        for (size_t d = 0; d < c.size(); d++) bad[t] += std::abs(c[d] - cls[k][d]) > 1e-5;
        for (size_t d = 0; d < mm.size(); d++) bad[t] += std::abs(mm[d] - mean[k][d]) > 1e-5;
        bad[t] += r.mask != want.mask;
        bad[t] += std::abs(r.loss - want.loss) > 1e-5;
        for (size_t i = 0; i < r.reconstruction.data.size(); i++)
          bad[t] += std::abs(int(r.reconstruction.data[i]) - int(want.reconstruction.data[i])) > 1;
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; t++) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

TEST(Api, ReconstructionPanelsAndMasks) {
  const auto m = Model::load(kA);
  const auto r = m->reconstruct({pattern(56, 40, 3, 1)}, 0.75, 7)[0];
  EXPECT_EQ(r.grid, 7);
  ASSERT_EQ(r.mask.size(), 49u);
  int removed = 0;
  for (auto v : r.mask) removed += v;
  EXPECT_EQ(removed, 49 - int(49 * 0.25));
  for (const Pixels* p : {&r.original, &r.masked, &r.reconstruction, &r.paste}) {
    EXPECT_EQ(p->width, 28);
    EXPECT_EQ(p->height, 28);
    EXPECT_EQ(p->channels, 1);
  }
  const Pixels grid = mae::api::four_panels(r);
  EXPECT_EQ(grid.width, 4 * 224 + 3 * 2);
  EXPECT_EQ(grid.height, 224);
  const auto png = mae::api::encode_png(grid);
  const Pixels back = mae::api::decode_image(png.data(), png.size());
  EXPECT_EQ(back.data, grid.data);
  // the same seed, the same mask; another seed, another
  EXPECT_EQ(m->reconstruct({pattern(56, 40, 3, 1)}, 0.75, 7)[0].mask, r.mask);
  EXPECT_NE(m->reconstruct({pattern(56, 40, 3, 1)}, 0.75, 8)[0].mask, r.mask);
}

TEST(Api, MisuseIsBadInput) {
  const auto m = Model::load(kA);
  Pixels wrong = pattern(28, 28, 3, 0);
  wrong.data.pop_back();
  EXPECT_EQ(kind_of([&] { m->embed({wrong}); }), Error::Kind::bad_input);
  Pixels four = pattern(28, 28, 4, 0);
  EXPECT_EQ(kind_of([&] { m->embed({four}); }), Error::Kind::bad_input);
  EXPECT_EQ(kind_of([&] { m->embed({}); }), Error::Kind::bad_input);
  EXPECT_EQ(kind_of([&] { m->reconstruct({}); }), Error::Kind::bad_input);
  EXPECT_EQ(kind_of([&] { m->reconstruct({pattern(28, 28, 1, 0)}, 1.0); }), Error::Kind::bad_input);
  EXPECT_EQ(kind_of([&] { m->reconstruct({pattern(28, 28, 1, 0)}, 0.99); }), Error::Kind::bad_input);  // keeps none
  EXPECT_EQ(kind_of([&] { m->classify({pattern(28, 28, 1, 0)}); }), Error::Kind::bad_input);
  const std::string text = "not an image";
  EXPECT_EQ(kind_of([&] { mae::api::decode_image(text.data(), text.size()); }), Error::Kind::bad_input);
  EXPECT_EQ(kind_of([] { Model::load("/nonexistent/model.safetensors"); }), Error::Kind::bad_input);
  mae::api::ModelOptions o;
  o.max_batch = 0;
  EXPECT_EQ(kind_of([&] { Model::load(kA, o); }), Error::Kind::bad_input);
  // a PNG over a caller's pixel limit, refused from its header
  const auto png = mae::api::encode_png(pattern(40, 30, 3, 0));
  EXPECT_EQ(kind_of([&] { mae::api::decode_image(png.data(), png.size(), 1000); }), Error::Kind::bad_input);
  EXPECT_NO_THROW(mae::api::decode_image(png.data(), png.size(), 1200));
}

}  // namespace

// open_model / make_ready: the one path from a file to a model ready to run.
#include "engine/open_model.h"

#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "engine/engine.h"
#include "kernels/packed_matrix.h"
#include "model/random_model.h"
#include "test_support.h"

namespace grok {
namespace {

// A tiny random Q8_0 GGUF with no vocabulary.
std::string q8_model() {
  static const std::string path = [] {
    const std::string p = test::temp_dir() + "/open-q8.gguf";
    RandomModelOptions o;
    o.type = DType::Q8_0;
    o.seed = 5;
    ThreadPool pool(2);
    write_random_model(p, preset_config("tiny"), o, pool, nullptr, nullptr);
    return p;
  }();
  return path;
}

TEST(OpenModel, EmptyPathIsTheBuiltInModelWithItsVocabulary) {
  const ReadyModel r = open_model("");
  // The trained default compiled in from models/default.gguf, else the tiny random model.
  EXPECT_EQ(r.model.format, embedded_default_model().empty() ? "builtin" : "gguf");
  EXPECT_EQ(r.model.path, "");
  ASSERT_TRUE(r.tokenizer.has_value());
  EXPECT_EQ(r.tokenizer->vocab_size(), r.model.config.vocab_size);
  EXPECT_FALSE(r.tokenizer->encode("Hello").empty());
}

TEST(OpenModel, TheRandomBuiltInModelIsStillThere) {
  const ReadyModel r = make_ready(builtin_random_model());
  EXPECT_EQ(r.model.format, "builtin");
  ASSERT_TRUE(r.tokenizer.has_value());
  EXPECT_EQ(r.tokenizer->vocab_size(), 412);
}

TEST(OpenModel, AModelWithoutVocabularyNeedsATokenizerOnlyWhenAskedTo) {
  test::expect_error([] { open_model(q8_model()); }, "--tokenizer");
  const ReadyModel r = open_model(q8_model(), {.need_tokenizer = false});
  EXPECT_FALSE(r.tokenizer.has_value());
}

TEST(OpenModel, RepacksWhereTheKernelsCanAndGivesTheSameLogitsEitherWay) {
  ReadyModel packed = open_model(q8_model(), {.need_tokenizer = false});
  ReadyModel plain = open_model(q8_model(), {.need_tokenizer = false, .repack = false});
  EXPECT_EQ(plain.pack.bytes, 0u);
  EXPECT_FALSE(plain.model.packed);
  if (packed_kernels_available()) {
    EXPECT_GT(packed.pack.bytes, 0u);
    EXPECT_TRUE(packed.model.weights.layers[0].wq.packed);
  } else {
    EXPECT_EQ(packed.pack.bytes, 0u);
  }
  const std::vector<int32_t> ids = {1, 7, 42, 300, 5};
  const std::vector<float> a = Engine(std::move(packed), 2).logits(ids, true);
  const std::vector<float> b = Engine(std::move(plain), 2).logits(ids, true);
  ASSERT_EQ(a.size(), b.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, double(std::abs(a[i] - b[i])));
    scale = std::max(scale, double(std::abs(b[i])));
  }
  // The two layouts differ only in float rounding (summation order).
  EXPECT_LT(worst, 1e-4 * scale) << "largest logit " << scale;
}

TEST(OpenModel, ActivationBitsReachTheMatrices) {
  const ReadyModel r8 = open_model(q8_model(), {.need_tokenizer = false, .activations8 = true});
  const ReadyModel r16 = open_model(q8_model(), {.need_tokenizer = false});
  EXPECT_TRUE(r8.model.weights.layers[0].wq.activations8);
  EXPECT_FALSE(r16.model.weights.layers[0].wq.activations8);
}

}  // namespace
}  // namespace grok

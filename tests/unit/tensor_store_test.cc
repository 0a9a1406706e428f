#include <gtest/gtest.h>

#include "core/error.h"
#include "io/tensor_store.h"
#include "test_support.h"

namespace grok {
namespace {

TEST(TensorStore, NumelOfHostileShapes) {
  TensorInfo t{.name = "w", .shape = {28555834747220325, 8243327181161198126, 0}, .file = "f.gguf"};
  EXPECT_EQ(t.numel(), 0);  // found by the fuzzer: the product overflowed before the 0
  t.shape = {28555834747220325, 8243327181161198126};
  test::expect_error([&] { t.numel(); }, "too large");
  t.shape = {3, 4};
  EXPECT_EQ(t.numel(), 12);
  t.shape = {};
  EXPECT_EQ(t.numel(), 1);  // a scalar
}

TEST(TensorStore, DuplicateAndMissingNamesAreErrors) {
  TensorStore s;
  s.add(TensorInfo{.name = "a", .file = "f"});
  test::expect_error([&] { s.add(TensorInfo{.name = "a", .file = "f"}); }, "'a' is present twice");
  test::expect_error([&] { s.get("b", "f"); }, "'b' is missing");
  EXPECT_EQ(s.find("a")->name, "a");
}

}  // namespace
}  // namespace grok

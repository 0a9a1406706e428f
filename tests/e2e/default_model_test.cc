// The built-in default model (models/default.gguf, trained by
// scripts/train-default on the King James Bible) writes English: at least
// 90% of the words it generates, greedily and sampled, 200 tokens from each
// of 5 prompts, are in the system's English word list (Debian's wamerican).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <string>

#include "model/model.h"
#include "test_support.h"

namespace grok {
namespace {

std::set<std::string> dictionary() {
  std::set<std::string> words;
  std::ifstream in("/usr/share/dict/words");
  for (std::string w; std::getline(in, w);) {
    std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    words.insert(w);
  }
  return words;
}

// Words: runs of letters (an apostrophe inside a word kept, as in "LORD's").
std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  auto flush = [&] {
    while (!w.empty() && w.back() == '\'') w.pop_back();
    if (!w.empty()) out.push_back(w);
    w.clear();
  };
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalpha(c) || (c == '\'' && !w.empty()))
      w += char(std::tolower(c));
    else
      flush();
  }
  flush();
  return out;
}

TEST(DefaultModel, WritesEnglishWords) {
  if (embedded_default_model().empty()) GTEST_SKIP() << "this build has no models/default.gguf (scripts/train-default)";
  const std::set<std::string> dict = dictionary();
  if (dict.size() < 10000) GTEST_SKIP() << "no /usr/share/dict/words (Debian wamerican; scripts/setup installs it)";
  const char* prompts[] = {"In the beginning", "And the LORD said unto Moses", "Blessed are the",
                           "The king of Israel", "And Jesus answered and said"};
  for (const char* sampling : {"--temperature 0", "--temperature 0.8 --seed 7"}) {
    int64_t total = 0, known = 0;
    std::string unknown;
    for (const char* p : prompts) {
      const test::CliResult r = test::run_grok(std::string("generate -p '") + p + "' -n 200 " + sampling);
      ASSERT_EQ(r.code, 0) << r.err;
      for (const std::string& w : words_of(r.out)) {
        ++total;
        if (dict.count(w))
          ++known;
        else if (unknown.size() < 400)
          unknown += w + " ";
      }
    }
    ASSERT_GT(total, 500) << sampling;  // 1000 tokens are hundreds of words
    const double share = double(known) / double(total);
    std::printf("%s: %lld of %lld words (%.1f%%) are English; not in the list: %s\n", sampling, (long long)known,
                (long long)total, 100 * share, unknown.c_str());
    EXPECT_GE(share, 0.90) << sampling;
  }
}

}  // namespace
}  // namespace grok

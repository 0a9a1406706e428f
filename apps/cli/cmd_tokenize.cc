// grok tokenize / grok detokenize.
#include <cstdio>

#include "apps/cli/commands.h"
#include "core/error.h"

namespace grok::cli {
namespace {

struct TokenizeArgs {
  ModelArgs model;
  std::string text;
  std::string ids;
  bool bos = false;
};

// Only the tokenizer is needed: a GGUF's vocabulary, or --tokenizer alone.
Tokenizer open_tokenizer(const ModelArgs& m) {
  if (m.model.empty() && !m.tokenizer.empty()) return Tokenizer::from_model_file(m.tokenizer);
  ModelArgs args = m;
  args.no_repack = true;  // no matrix is multiplied
  return open_engine(args)->tokenizer();
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* tok = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  add_model_options(tok, a->model);
  tok->add_option("-p,--prompt", a->text, "the text")->required();
  tok->add_flag("--bos", a->bos, "prepend the BOS token");
  tok->callback([a] {
    const Tokenizer t = open_tokenizer(a->model);
    std::vector<int32_t> ids = t.encode(a->text);
    if (a->bos) ids.insert(ids.begin(), t.bos_id());
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
    std::printf("%s]\n", out.c_str());
  });

  CLI::App* detok = app.add_subcommand("detokenize", "Print the text of token ids");
  add_model_options(detok, a->model);
  detok->add_option("ids", a->ids, "token ids: a JSON array or a comma-separated list")->required();
  detok->callback([a] {
    const Tokenizer t = open_tokenizer(a->model);
    const std::string text = t.decode(parse_id_list(a->ids));
    std::printf("%s\n", text.c_str());
  });
}

}  // namespace grok::cli

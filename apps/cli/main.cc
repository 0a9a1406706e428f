// grok: run Grok-architecture models. `grok <command> --help` for each command.
#include <cstdio>

#include "apps/cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"grok: run Grok-1 and other models of its architecture on the CPU"};
  app.require_subcommand(1);
  grok::cli::register_generate(app);
  grok::cli::register_logits(app);
  grok::cli::register_tokenize(app);
  grok::cli::register_inspect(app);
  grok::cli::register_bench(app);
  grok::cli::register_kl(app);
  grok::cli::register_quantize(app);
  grok::cli::register_convert(app);
  grok::cli::register_init(app);
  grok::cli::register_serve(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const grok::Error& e) {
    std::fprintf(stderr, "grok: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "grok: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "grok: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

// grok: run Grok-architecture models. `grok <command> --help` for each command.
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "apps/cli/commands.h"
#include "core/error.h"
#include "dist/mpi_cluster.h"
#include "kernels/cpu/isa.h"

#ifndef GROK_VERSION
#define GROK_VERSION "unknown"
#endif

namespace {

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(sub->get_name());
  return names;
}

std::string command_list(const CLI::App& app) {
  std::string list;
  for (const std::string& name : command_names(app)) list += (list.empty() ? "" : ", ") + name;
  return list;
}

// One line for any refusal, as for every other error; exit status 1.
// Under mpirun every rank meets the same refusal: the leader says it.
int refuse(const std::string& what) {
  if (!grok::MpiCluster::world().leader()) return 1;
  std::fprintf(stderr, "grok: error: %s\n", what.c_str());
  return 1;
}

// An error while running under mpirun: said once, naming the rank when it
// is not the leader, and the whole job ends (the others may be waiting on
// this rank in a collective).
[[noreturn]] void fail_job(grok::MpiCluster& cluster, const std::string& what) {
  if (cluster.leader())
    std::fprintf(stderr, "grok: error: %s\n", what.c_str());
  else
    std::fprintf(stderr, "grok: error: rank %d (%s): %s\n", cluster.rank(), cluster.host().c_str(), what.c_str());
  std::fflush(stderr);
  cluster.abort_job(1);
}

// The commands that run as one job over several processes.
bool runs_under_mpirun(std::string_view command) {
  return command == "generate" || command == "logits" || command == "bench" || command == "serve" ||
         command == "inspect";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"grok: run Grok-1 and other models of its architecture on the CPU"};
  app.require_subcommand(1);
  // Asked only for --version: choosing the kernels may refuse a bad GROK_ISA,
  // which must be the one-line error below, not an uncaught exception.
  app.set_version_flag("--version", [] {
    return std::string("grok ") + GROK_VERSION + " (kernels: " + std::string(grok::isa_name(grok::active_isa())) + ")";
  });
  grok::cli::register_generate(app);
  grok::cli::register_logits(app);
  grok::cli::register_tokenize(app);
  grok::cli::register_inspect(app);
  grok::cli::register_bench(app);
  grok::cli::register_kl(app);
  grok::cli::register_perplexity(app);
  grok::cli::register_quantize(app);
  grok::cli::register_convert(app);
  grok::cli::register_init(app);
  grok::cli::register_serve(app);
  grok::cli::register_train(app);

  // CLI11 would call an unknown word "an unexpected argument" after asking
  // for "a subcommand": say which word and what the commands are.
  grok::MpiCluster* cluster = nullptr;
  try {
    cluster = &grok::MpiCluster::world();
  } catch (const grok::Error& e) {
    std::fprintf(stderr, "grok: error: %s\n", e.what());
    return 1;
  }
  const int status = [&] {
  if (argc < 2) return refuse("give a command: " + command_list(app) + " (grok --help says what each does)");
  const std::string_view first = argv[1];
  const std::vector<std::string> names = command_names(app);
  if (!first.starts_with('-') && std::find(names.begin(), names.end(), first) == names.end())
    return refuse("unknown command '" + std::string(first) + "'; the commands are " + command_list(app));
  if (cluster->distributed() && !first.starts_with('-') && !runs_under_mpirun(first))
    return refuse("grok " + std::string(first) +
                  " runs as one process; under mpirun run generate, logits, bench, serve or inspect");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::string where = "grok";
    for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
    std::string what = e.what();
    // CLI11's "-n: 1 required INT:0 or more missing" means the value was left out.
    if (e.get_name() == "ArgumentMismatch" && what.ends_with(" missing"))
      what = what.substr(0, what.find(':')) + " needs a value";
    return refuse(what + " (" + where + " --help lists the options)");
  } catch (const grok::Error& e) {
    if (cluster->distributed()) fail_job(*cluster, e.what());
    return refuse(e.what());
  } catch (const std::bad_alloc&) {
    if (cluster->distributed()) fail_job(*cluster, "out of memory");
    return refuse("out of memory");
  } catch (const std::exception& e) {
    if (cluster->distributed()) fail_job(*cluster, e.what());
    return refuse(e.what());
  }
  return 0;
  }();
  cluster->finish();
  return status;
}

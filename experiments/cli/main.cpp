// softprompt: the command-line entry point. Subcommands register themselves (command.h).
#include <CLI/CLI.hpp>
#include <exception>
#include <functional>
#include <iostream>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <utility>
#include <vector>

#include "experiments/cli/command.h"
#include "experiments/training/interrupt.h"
#include "tensor/backend.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cuda_emulation.h"
#include "tensor/cuda_hooks.h"
#include "tensor/error.h"
#include "tensor/suggest.h"

namespace {

std::string version_text() {
  const dnnl::version_t* dnnl = dnnl::version();
  std::string cuda;
  if (sp::cuda_emulated()) {
    cuda = "CUDA emulated on the host (SP_EMULATE_CUDA=1): cuda:0 runs on the CPU";
  } else if (!sp::built_with_cuda()) {
    cuda = "built without CUDA";
  } else if (sp::cuda_available()) {
    cuda = sp::str_cat("built with CUDA, ", sp::cuda_device_count(), " device(s) visible");
  } else {
    cuda = sp::str_cat("built with CUDA; ", sp::cuda_unavailable_reason());
  }
  // Debian's oneDNN reports its git hash as "N/A".
  const std::string hash = dnnl->hash;
  const std::string dnnl_version =
      sp::str_cat(dnnl->major, ".", dnnl->minor, ".", dnnl->patch,
                  hash.empty() || hash == "N/A" ? "" : " (" + hash + ")");
  return sp::str_cat("softprompt ", SP_VERSION, "\noneDNN ", dnnl_version, "\nCUDA: ", cuda,
                     "\nCPU threads: ", sp::cpu::num_threads(), " (OpenMP)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"softprompt: parameter-efficient tuning of T5 on a from-scratch tensor engine.",
               "softprompt"};
  app.set_version_flag("--version", version_text, "Print the version, oneDNN, CUDA and threads");
  app.require_subcommand(0, 1);

  std::vector<std::pair<CLI::App*, std::function<int()>>> actions;
  for (const sp::cli::Command& command : sp::cli::commands()) {
    CLI::App* sub = app.add_subcommand(command.name, command.description);
    actions.emplace_back(sub, command.setup(*sub));
  }

  // Exit statuses: 0 done, 1 a run that failed, 2 a usage error (flags, a spec, --set),
  // 130 interrupted (Ctrl-C) after a checkpoint to resume from.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);  // prints the message (or the help / version asked for)
    // A first word that is no command (a typo: rnu): name the closest one.
    if (status != 0 && argc > 1 && argv[1][0] != '-' && app.get_subcommands().empty()) {
      std::vector<std::string> names;
      for (const sp::cli::Command& c : sp::cli::commands()) names.push_back(c.name);
      std::cerr << "'" << argv[1] << "' is not a softprompt command"
                << sp::did_you_mean(argv[1], names) << " (softprompt --help lists them)\n";
    }
    return status == 0 ? 0 : 2;
  }

  for (auto& [sub, action] : actions) {
    if (!sub->parsed()) continue;
    try {
      return action();
    } catch (const std::exception& e) {
      std::cerr << "softprompt " << sub->get_name() << ": " << sp::error_text(e) << "\n";
      if (dynamic_cast<const sp::Interrupted*>(&e)) return 130;
      return dynamic_cast<const sp::UsageError*>(&e) ? 2 : 1;
    }
  }
  std::cerr << app.help() << "softprompt: name a command\n";
  return 2;
}

#include "experiments/cli/command.h"

#include <algorithm>
#include <utility>

#include "tensor/error.h"

namespace sp::cli {
namespace {

// Function-local so registrars in other files' static initialisers can use it safely.
std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace

std::vector<Command> commands() {
  std::vector<Command> sorted = registry();
  std::sort(sorted.begin(), sorted.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  return sorted;
}

CommandRegistrar::CommandRegistrar(std::string name, std::string description, CommandSetup setup) {
  for (const Command& c : registry()) {
    SP_CHECK(c.name != name, "[cli] command registered twice: ", name);
  }
  registry().push_back({std::move(name), std::move(description), std::move(setup)});
}

}  // namespace sp::cli

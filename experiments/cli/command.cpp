#include "experiments/cli/command.h"

#include <algorithm>
#include <utility>

#include "tensor/backend.h"
#include "tensor/cuda_hooks.h"
#include "tensor/error.h"

namespace sp::cli {
namespace {

// Function-local so registrars in other files' static initialisers can use it safely.
std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

// A validator accepting numbers for which ok(value) holds; otherwise "must be <what>, got X".
CLI::Validator number_check(bool (*ok)(double), const std::string& what, const std::string& name) {
  return CLI::Validator(
      [ok, what](std::string& input) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(input, value)) return "must be a number, got " + input;
        return ok(value) ? std::string() : "must be " + what + ", got " + input;
      },
      name);
}

}  // namespace

CLI::Validator positive() {
  return number_check([](double v) { return v > 0; }, "positive", "POSITIVE");
}

CLI::Validator non_negative() {
  return number_check([](double v) { return v >= 0; }, ">= 0", "NONNEGATIVE");
}

CLI::Validator probability() {
  return number_check([](double v) { return v >= 0 && v < 1; }, "in [0, 1)", "RATE");
}

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

Device device_from_flag(const std::string& command, const std::string& text) {
  Device d = Device::cpu();
  if (text == "cuda") {
    d = Device::cuda(0);
  } else if (text.rfind("cuda:", 0) == 0 && text.size() > 5 &&
             std::all_of(text.begin() + 5, text.end(),
                         [](char c) { return c >= '0' && c <= '9'; }) &&
             text.size() < 10) {
    d = Device::cuda(std::stoi(text.substr(5)));
  } else {
    SP_CHECK(text == "cpu", "[", command, "] --device must be cpu, cuda or cuda:N, got '", text,
             "'");
  }
  if (d.is_cuda()) {
    SP_CHECK(cuda_available(), "[", command, "] --device ", d.str(),
             " is not usable: ", cuda_unavailable_reason());
    SP_CHECK(d.index < cuda_device_count(), "[", command, "] --device ", d.str(),
             " is not usable: ", cuda_device_count(), " CUDA device(s) visible");
  }
  return d;
}

}  // namespace sp::cli

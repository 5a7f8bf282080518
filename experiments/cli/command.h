#pragma once
// The subcommands of the `softprompt` binary. Each lives in its own file and registers
// itself with SP_REGISTER_COMMAND, so adding `score` or `generate` is adding a file:
//
//   std::function<int()> setup_demo(CLI::App& sub) {
//     auto options = std::make_shared<DemoOptions>();
//     sub.add_option("--steps", options->steps, "training steps");
//     return [options] { return run_demo(*options); };
//   }
//   SP_REGISTER_COMMAND(demo, "Train a small MLP with the engine", setup_demo);
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "tensor/device.h"

namespace sp::cli {

// Adds the command's options to sub, bound to storage the returned action keeps alive.
// The action runs once the command line is parsed; its result is the exit status.
using CommandSetup = std::function<std::function<int()>(CLI::App& sub)>;

struct Command {
  std::string name;
  std::string description;
  CommandSetup setup;
};

// Every registered command, sorted by name.
std::vector<Command> commands();

// The device a --device flag names ("cpu", "cuda", "cuda:N"); throws "[<command>] --device
// ..." for another value, or naming the reason when CUDA is not usable.
Device device_from_flag(const std::string& command, const std::string& text);

// Number checks with short messages ("-k: must be positive, got 0"); CLI11's PositiveNumber
// and NonNegativeNumber print the full range, DBL_MAX's 309 digits included.
CLI::Validator positive();
CLI::Validator non_negative();
CLI::Validator probability();  // a rate in [0, 1): dropout

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string description, CommandSetup setup);
};

}  // namespace sp::cli

#define SP_REGISTER_COMMAND(name, description, setup) \
  static const ::sp::cli::CommandRegistrar sp_command_registrar_##name(#name, description, setup)

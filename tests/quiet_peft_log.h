#pragma once
// Keeps PEFT's log lines ("[peft:<name>] N trainable parameters of M") off a test's output
// for its scope; `lines` holds them for tests that check what was logged.
#include <string>
#include <vector>

#include "nn/peft/peft.h"

namespace sp {

struct QuietPeftLog {
  QuietPeftLog() {
    set_peft_log_sink([this](const std::string& line) { lines.push_back(line); });
  }
  ~QuietPeftLog() { set_peft_log_sink(nullptr); }
  QuietPeftLog(const QuietPeftLog&) = delete;
  QuietPeftLog& operator=(const QuietPeftLog&) = delete;

  std::vector<std::string> lines;
};

}  // namespace sp

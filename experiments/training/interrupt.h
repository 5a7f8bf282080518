#pragma once
// Ctrl-C (SIGINT) and SIGTERM during training: the first one asks the trainer to stop at
// the end of the step it is in and write a checkpoint to resume from; a second one stops
// the process at once, as without this. Only while an InterruptScope is alive (a trainer's
// run), so other work (tokenizing, a plain evaluation) stops on the first Ctrl-C as usual.
//
//   InterruptScope scope;                    // installs the handlers, restores them after
//   if (interrupt_requested()) { checkpoint; throw Interrupted(step); }
#include <cstdint>

#include "tensor/error.h"

namespace sp {

// Thrown by the trainer after it wrote the checkpoint of the step it stopped at; the CLI
// exits with status 130 (128 + SIGINT), as a shell reports an interrupted command.
class Interrupted : public Error {
 public:
  explicit Interrupted(const std::string& what) : Error(what) {}
};

// Whether SIGINT or SIGTERM arrived inside the current InterruptScope, or inside the last
// one after it ended (until the next begins): a signal that came after a trainer's last
// step stops the caller (the runner, before its next stage) instead.
bool interrupt_requested();

class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
};

}  // namespace sp

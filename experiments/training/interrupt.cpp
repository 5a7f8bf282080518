#include "experiments/training/interrupt.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace sp {
namespace {

std::atomic<int> g_signal{0};  // the first signal caught, 0 when none
std::atomic<int> g_scopes{0};  // nested scopes: the outermost installs and restores
struct sigaction g_old_int, g_old_term;

void on_signal(int sig) {
  if (g_signal.exchange(sig) != 0) {
    // The second one: the default action (the process ends as it would have).
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  static const char kMsg[] =
      "\n[trainer] interrupted: stopping after this step to write a checkpoint "
      "(interrupt again to stop now, without one)\n";
  const ssize_t ignored = ::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
  (void)ignored;
}

}  // namespace

bool interrupt_requested() { return g_signal.load() != 0; }

InterruptScope::InterruptScope() {
  if (g_scopes.fetch_add(1) != 0) return;
  g_signal.store(0);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptScope::~InterruptScope() {
  if (g_scopes.fetch_sub(1) != 1) return;
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

}  // namespace sp

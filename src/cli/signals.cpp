#include "cli/signals.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>

#include "cli/common.hpp"

namespace assetmv::cli {

namespace {

std::atomic<int> g_signals{0};

// Async-signal-safe: an atomic store, and _exit on the second signal.
void on_signal(int) {
  if (g_signals.fetch_add(1) >= 1) _exit(kExitStopped);
}

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return g_signals.load() > 0; }

}  // namespace assetmv::cli

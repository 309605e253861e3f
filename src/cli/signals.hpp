// The stop signals: SIGINT and SIGTERM ask the run to stop cleanly (what is
// in flight finishes, then exit 3); a second one exits at once with exit 3,
// which is safe too: every step of the migration survives being abandoned.
#pragma once

namespace assetmv::cli {

void install_stop_handlers();
// True once a stop signal has arrived. Async-signal-safe to set, cheap to poll.
bool stop_requested();

}  // namespace assetmv::cli

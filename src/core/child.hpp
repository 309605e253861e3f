// A child process run beside the event loop's other work: its output is read
// as it comes, its end is noticed without a blocking wait, and one that
// outlives its time is killed. For a credential_process, which may take
// seconds (an SSO refresh) while hundreds of transfers are in flight.
//
// The command runs without a shell (argv[0] found on PATH), with stdin from
// /dev/null and the process's environment. `done` is called once, on the
// loop's thread, never from inside run_child() itself.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/loop.hpp"

namespace assetmv {

struct ChildOutput {
  int exit_code = -1;  // its exit status; -1 when a signal ended it
  int signal = 0;      // the signal that ended it, 0 if none
  std::string out;     // stdout, at most kMaxChildOutput bytes
  std::string err;     // stderr, likewise
};

inline constexpr std::size_t kMaxChildOutput = std::size_t{64} << 10;  // a credentials document is a few hundred bytes

// Starts argv; delivers its output once it has exited. Fails (Fatal) when it
// cannot be started, and (Retryable, "Timeout") when it had not exited after
// `timeout`: it is killed then.
void run_child(EventLoop& loop, std::vector<std::string> argv, std::chrono::milliseconds timeout,
               std::function<void(Result<ChildOutput>)> done);

// Splits a command line as a POSIX shell would split words (single and
// double quotes, backslash escapes; no expansion), as the AWS tools split a
// credential_process. nullopt when a quote is not closed.
std::optional<std::vector<std::string>> split_command(std::string_view line);

}  // namespace assetmv

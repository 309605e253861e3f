// Steering a run while it goes, from a shell or a `kubectl exec`, without a
// restart and without losing work:
//   --pause-file PATH    while this file exists the run is paused (gh-ost's
//                        flag-file convention: `touch` to pause, `rm` to resume);
//   --control-file PATH  directives, one per line, read whenever the file
//                        changes: `pause` (paused while the line is there),
//                        `max-rate N` (S3 requests started per second, 0: no
//                        cap; replaces --max-rate), `#` starts a comment.
// Both are checked a few times per second. A line that cannot be understood
// is reported once and ignored: a typo must not stop a run hours in.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace assetmv::cli {

struct Control {
  bool paused = false;
  std::string pause_reason;        // which file, and the line or its existence
  std::optional<double> max_rate;  // absent: the command line's
  std::vector<std::string> problems;
  bool operator==(const Control&) const = default;
};

// The directives of a control file's text. Pure.
Control parse_control(std::string_view text, std::string_view path);

class ControlFiles {
 public:
  ControlFiles(std::string control_path, std::string pause_path)
      : control_path_(std::move(control_path)), pause_path_(std::move(pause_path)) {}
  bool any() const { return !control_path_.empty() || !pause_path_.empty(); }
  // What the files say now. Reads the control file again only when its
  // size or modification time changed; a file that cannot be read counts as
  // absent (and says so once).
  Control poll();

 private:
  std::string control_path_;
  std::string pause_path_;
  Control parsed_;
  std::optional<std::pair<std::int64_t, std::int64_t>> seen_;  // size, mtime in ns
  bool unreadable_reported_ = false;
};

}  // namespace assetmv::cli

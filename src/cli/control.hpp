// Steering a run while it goes, from a shell or a `kubectl exec`, without a
// restart and without losing work:
//   --pause-file PATH    while this file exists the run is paused (gh-ost's
//                        flag-file convention: `touch` to pause, `rm` to resume);
//   --control-file PATH  directives, one per line, read whenever the file
//                        changes: `pause` (paused while the line is there),
//                        `max-rate N` (S3 requests started per second, 0: no
//                        cap; replaces --max-rate), `#` starts a comment.
//                        A line may name one shard of a sharded run:
//                        `shard 3: pause`, `shard 3: max-rate 100` apply to
//                        shard 3 alone (a shard's own max-rate is its own
//                        rate, where a plain one is the whole run's), so one
//                        ConfigMap steers every shard or just one.
// Both are checked a few times per second. A line that cannot be understood
// is reported once and ignored: a typo must not stop a run hours in.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace assetmv::cli {

struct Control {
  bool paused = false;
  std::string pause_reason;        // which file, and the line or its existence
  std::optional<double> max_rate;  // absent: the command line's
  // A `shard K:` line's max-rate for this shard: its own rate, not a share,
  // and it wins over max_rate.
  std::optional<double> shard_max_rate;
  std::vector<std::string> problems;
  bool operator==(const Control&) const = default;
};

// The directives of a control file's text, for shard `shard` of `shards`
// (0 of 1: a run without shards). Pure.
Control parse_control(std::string_view text, std::string_view path, std::uint32_t shard = 0, std::uint32_t shards = 1);

class ControlFiles {
 public:
  ControlFiles(std::string control_path, std::string pause_path, std::uint32_t shard = 0, std::uint32_t shards = 1)
      : control_path_(std::move(control_path)), pause_path_(std::move(pause_path)), shard_(shard), shards_(shards) {}
  bool any() const { return !control_path_.empty() || !pause_path_.empty(); }
  // What the files say now. Reads the control file again only when its
  // size or modification time changed; a file that cannot be read counts as
  // absent (and says so once).
  Control poll();

 private:
  std::string control_path_;
  std::string pause_path_;
  std::uint32_t shard_;
  std::uint32_t shards_;
  Control parsed_;
  std::optional<std::pair<std::int64_t, std::int64_t>> seen_;  // size, mtime in ns
  bool unreadable_reported_ = false;
};

}  // namespace assetmv::cli

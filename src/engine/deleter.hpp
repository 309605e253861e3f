// The delete stage: removes legacy objects whose rows have all moved (the
// migration hands a key here only after the commit that stopped referencing
// it). Keys go out in DeleteObjects requests of up to kMaxDeleteKeys, a few in
// flight; a key XML cannot carry goes alone as DeleteObject. The answer lists
// the keys that failed: those failing with a throttle (a SlowDown inside the
// 200, which slows every request through the store) or a transient error are
// sent again after a backoff, never counted deleted until they are; the
// others, and those out of attempts, are reported.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/backoff.hpp"
#include "core/loop.hpp"
#include "core/retry.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

class Deleter {
 public:
  // DeleteObjects requests in flight at once: deletes are cheap and batched;
  // more would only compete with the copies for the store's write rate.
  static constexpr std::size_t kMaxRequests = 4;

  struct Options {
    RetryPolicy retry;  // for keys the answer says failed for a transient reason
  };
  using DeletedFn = std::function<void(std::size_t count)>;
  using FailedFn = std::function<void(const std::string& key, std::string why)>;

  Deleter(EventLoop& loop, ObjectStore& store, Options options, DeletedFn deleted, FailedFn failed)
      : store_(store),
        o_(options),
        deleted_(std::move(deleted)),
        failed_(std::move(failed)),
        backoff_(loop, o_.retry) {}
  Deleter(const Deleter&) = delete;
  Deleter& operator=(const Deleter&) = delete;

  // Queues a key (with a version id: exactly that version); sends a request
  // once a full one is queued.
  void add(s3::ObjectVersion object);
  // Sends what is queued, partial requests too, up to kMaxRequests in flight.
  void flush();
  // For a stop: keys waiting out a backoff, and while paused the queued
  // ones too, are left where they are (the rows no longer point at them; a
  // rerun deletes them), and none waits again.
  void stop();
  // While paused no request starts (those in flight finish); keys queue.
  void set_paused(bool paused);

  std::size_t queued() const { return queue_.size(); }
  bool idle() const { return queue_.empty() && alone_.empty() && in_flight_ == 0 && backoff_.waiting() == 0; }

 private:
  struct Key {
    s3::ObjectVersion object;
    int failures = 0;
  };
  void send(std::vector<Key> keys);
  void answered(std::vector<Key> keys, Result<s3::DeleteResult> r);
  void delete_alone(const s3::ObjectVersion& object);
  void retry_later(std::vector<Key> keys, ErrorKind kind);

  ObjectStore& store_;
  Options o_;
  DeletedFn deleted_;
  FailedFn failed_;
  Backoff backoff_;  // keys waiting out a backoff; a stop leaves them where they are
  std::vector<Key> queue_;
  std::vector<s3::ObjectVersion> alone_;  // keys for DeleteObject, held while paused
  std::size_t in_flight_ = 0;
  bool paused_ = false;
};

}  // namespace assetmv::engine

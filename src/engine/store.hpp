// The seam between the engine and the two services it changes: the S3
// operations a migration uses on its two buckets (ObjectStore) and the
// statements it runs against the table (RowStore). The engine depends only
// on these. The real ones are S3Store (s3_store.hpp: s3::Client bound to the
// buckets) and DbRows (db_session.hpp); unit tests drive the engine with an
// in-process fake (tests/support/fake_world.hpp).
//
// Contract for both: each callback is called exactly once, on the loop's
// thread, possibly before the call that started it returns; failures arrive
// as Errors classified by core/error (the client's retries already spent).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/byte_budget.hpp"
#include "core/error.hpp"
#include "db/table.hpp"
#include "s3/client.hpp"

namespace assetmv::engine {

// Which of the run's two buckets an operation addresses.
enum class Side { Legacy, Dest };

class ObjectStore {
 public:
  template <class T>
  using Callback = std::function<void(Result<T>)>;
  virtual ~ObjectStore() = default;

  virtual void list(Side side, const s3::ListParams& p, Callback<s3::ListPage> cb) = 0;
  virtual void head(Side side, const std::string& key, Callback<s3::ObjectInfo> cb) = 0;
  // Server-side copy from the legacy bucket into the destination bucket
  // (p.source_bucket is the store's to fill in). Delivers the copy's ETag.
  // `size` is the source's, as listed (what a HEAD of the copy must show).
  virtual void copy(s3::CopyParams p, std::uint64_t size, Callback<std::string> cb) = 0;
  // The same through UploadPartCopy, for objects over the single-copy limit.
  virtual void multipart_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size,
                              Callback<std::string> cb) = 0;
  // Copies a destination object onto itself, headers and metadata kept, so
  // that its LastModified is now: the delete grace's clock (plan.hpp). Only
  // while it is still the version `etag`; a 412 means someone wrote it since,
  // which stamped it later still.
  virtual void restamp(const std::string& dest_key, const std::string& etag, Callback<std::string> cb) = 0;
  // The copy between two services, which cannot copy server-side: the bytes
  // pass through this process, held under `budget` (s3::Client::stream_copy).
  virtual void stream_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, ByteBudget& budget,
                           Callback<std::string> cb) = 0;
  // Legacy objects only: the run never deletes a destination. With a
  // version id (--delete-versions) exactly that version goes.
  virtual void delete_objects(const std::vector<s3::ObjectVersion>& legacy, Callback<s3::DeleteResult> cb) = 0;
  virtual void delete_object(const s3::ObjectVersion& legacy, Callback<bool> cb) = 0;
  // A throttle the store reported inside a successful answer (a per-key
  // SlowDown in DeleteObjects): slows every request as a 503 does.
  virtual void throttled() = 0;
  // An operator's pause: nothing queued is sent while held; what is on the
  // wire finishes (s3::Client::set_held). stop_retrying() lifts it.
  virtual void hold(bool held) = 0;
  // For a stop: no operation waits out a backoff any more (s3::Client::stop_retrying).
  virtual void stop_retrying(const std::string& why) = 0;
  virtual bool idle() const = 0;
  // Both buckets on one service: copies can be server-side.
  virtual bool same_service() const = 0;
  virtual std::string bucket_name(Side side) const = 0;  // for messages
};

class RowStore {
 public:
  using Ids = std::vector<std::int64_t>;
  using Bounds = std::optional<std::pair<std::int64_t, std::int64_t>>;
  virtual ~RowStore() = default;

  // The scan, before anything else is in flight: synchronous, retried inside.
  // See db::PathTable for what each reads.
  virtual Result<Bounds> id_bounds() = 0;
  virtual Result<std::vector<db::Row>> scan(std::int64_t after, std::int64_t upto, const std::string& prefix, int limit,
                                            const Shard& shard) = 0;
  virtual Result<std::vector<db::Row>> page(std::int64_t after, int limit) = 0;
  // One compare-and-set statement, sent without blocking and retried on the
  // loop's timers (the loop keeps serving the copies meanwhile, whatever
  // the database does). Delivers the ids updated.
  virtual void compare_and_set(std::vector<db::CasItem> items, std::function<void(Result<Ids>)> done) = 0;
  // For a stop: statements in flight are cancelled and none is retried;
  // each answers Interrupted (its rows stay as they were).
  virtual void stop(const std::string& /*why*/) {}
};

}  // namespace assetmv::engine

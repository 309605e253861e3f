// An in-process fake of the two services behind the engine's seam, for unit
// tests of the migration's state machine: two buckets as sorted maps with
// S3's semantics for what the engine uses (ListObjectsV2 paging, copy
// conditions, DeleteObjects' per-key answers), and a table as a map of rows
// with compare-and-set. Failures are injected by hooks; answers arrive on the
// loop, after an optional latency, as the real ones do.
//
// Both fakes check the design's invariant as the engine acts on them: a row
// is only ever pointed at an object that exists, and a legacy object is only
// deleted when no row references it (`violations`).
//
// Never the proof that the product works: the e2e suite runs the binary
// against the real gateway and PostgreSQL.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/loop.hpp"
#include "engine/item.hpp"
#include "engine/store.hpp"

namespace assetmv::testing {

struct FakeObject {
  std::string etag;  // without quotes
  std::uint64_t size = 0;
  std::string source_etag;  // the metadata a multipart copy by this tool carries
  std::string last_modified = "2026-12-01T00:00:00.000Z";
  std::string storage_class = "STANDARD";  // as listed; a copy takes x-amz-storage-class, else STANDARD (as S3)
  std::string restore = {};                // the x-amz-restore a HEAD gives
  std::string version_id = {};             // the x-amz-version-id a HEAD gives: a versioned bucket
};

class FakeRows;

class FakeStore final : public engine::ObjectStore {
 public:
  using Side = engine::Side;
  explicit FakeStore(EventLoop& loop) : loop_(loop) {}

  std::map<std::string, FakeObject> legacy;
  std::map<std::string, FakeObject> dest;
  std::map<std::string, FakeObject>& bucket(Side s) { return s == Side::Legacy ? legacy : dest; }

  // Injection: called as each operation is answered ("list", "head", "copy",
  // "multipart_copy", "stream_copy", "delete_objects", "delete_object"); an
  // Error returned is the answer instead (as after the client's retries).
  std::function<std::optional<Error>(const std::string& op, Side side, const std::string& key)> fail;
  // Called as a copy (or stream) is answered, before its conditions are checked:
  // lets a test change the world between the listing and the copy.
  std::function<void(const std::string& dest_key)> before_copy;
  // A DeleteObjects answer's per-key error code for this key, or nullopt
  // to delete it (asked once per attempt).
  std::function<std::optional<std::string>(const std::string& key)> delete_key_error;
  std::chrono::milliseconds latency{0};          // each answer's delay
  std::string now = "2026-12-02T12:00:00.000Z";  // the LastModified a write gives
  bool same = true;                              // same_service()
  bool honours_if_none_match = true;
  FakeRows* rows = nullptr;  // for the invariant check on delete

  std::map<std::string, int> calls;    // by operation, as answered
  std::map<std::string, int> started;  // copies, writes and deletes, as sent
  int throttles = 0;
  std::vector<std::string> stops;  // stop_retrying() reasons
  std::vector<std::string> violations;
  // Deletes by version id, "key?versionId=v", in the order sent: a version
  // other than the current one is noncurrent, and only recorded.
  std::vector<std::string> versions_deleted;
  std::uint64_t stream_peak = 0;  // the most bytes a stream_copy budget held at once

  void list(Side side, const s3::ListParams& p, Callback<s3::ListPage> cb) override;
  void head(Side side, const std::string& key, Callback<s3::ObjectInfo> cb) override;
  void copy(s3::CopyParams p, std::uint64_t size, Callback<std::string> cb) override;
  void multipart_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, Callback<std::string> cb) override;
  void restamp(const std::string& dest_key, const std::string& etag, Callback<std::string> cb) override;
  void stream_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, ByteBudget& budget,
                   Callback<std::string> cb) override;
  void delete_objects(const std::vector<s3::ObjectVersion>& legacy, Callback<s3::DeleteResult> cb) override;
  void delete_object(const s3::ObjectVersion& legacy, Callback<bool> cb) override;
  void throttled() override { ++throttles; }
  void hold(bool h) override;
  // Lifts a hold, as the real client does; what was held is then answered,
  // where the real client gives it up.
  void stop_retrying(const std::string& why) override {
    stops.push_back(why);
    hold(false);
  }
  bool idle() const override { return pending_ == 0; }
  bool same_service() const override { return same; }
  std::string bucket_name(Side side) const override { return side == Side::Legacy ? "legacy" : "prod"; }

 private:
  // Runs `answer` on the loop after the latency, counting it pending till then.
  void later(std::function<void()> answer);
  std::optional<Error> injected(const std::string& op, Side side, const std::string& key);
  Result<std::string> copy_now(const s3::CopyParams& p, bool multipart);
  void erase_legacy(const s3::ObjectVersion& o);

  EventLoop& loop_;
  int pending_ = 0;
  bool held_ = false;
  std::vector<std::function<void()>> deferred_;  // operations not "sent" while held
};

class FakeRows final : public engine::RowStore {
 public:
  FakeRows(EventLoop& loop, FakeStore& store) : loop_(loop), store_(store) { store.rows = this; }

  std::map<std::int64_t, std::optional<std::string>> rows;
  // Called as a compare-and-set is answered, before it applies: the live
  // application's writes, or an Error to fail the statement.
  std::function<std::optional<Error>(const std::vector<db::CasItem>& items)> before_cas;
  std::chrono::milliseconds latency{0};
  std::string legacy_prefix = "image/";
  std::string dest_prefix = "avatar/";

  int statements = 0;
  std::vector<std::size_t> statement_rows;  // rows of each compare-and-set, as sent
  std::vector<std::string> violations;

  Result<Bounds> id_bounds() override;
  Result<std::vector<db::Row>> scan(std::int64_t after, std::int64_t upto, const std::string& prefix, int limit,
                                    const Shard& shard) override;
  Result<std::vector<db::Row>> page(std::int64_t after, int limit) override;
  void compare_and_set(std::vector<db::CasItem> items, std::function<void(Result<Ids>)> done) override;

  bool references(const std::string& path) const;

 private:
  EventLoop& loop_;
  FakeStore& store_;
};

// The per-item state machine (engine/item.hpp), checked as the migration
// moves each item (Hooks::on_transition): every move must be an arrow of
// engine::allowed() and start where the item's previous move ended, and at
// the end of the run every item must be in a terminal state.
class StateCheck {
 public:
  void operator()(const engine::Item& item, engine::State from, engine::State to);
  // The moves off the machine, then the items left in a non-terminal state.
  std::vector<std::string> violations() const;
  // How many items ended in each state.
  std::map<engine::State, int> ended() const;

 private:
  std::map<std::string, engine::State> last_;  // by legacy key: unique within a run
  std::vector<std::string> bad_;
};

// An MD5-like ETag for content `n` (32 hex digits).
std::string md5_etag(int n);

}  // namespace assetmv::testing

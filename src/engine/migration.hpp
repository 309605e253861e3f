// The migration: joins the legacy listing, the destination listing and the
// table's legacy rows by name (Feed), and drives each name through the
// stages, each in its own file:
//
//   plan -> copy (server-side, only the listed version, never over an
//   existing object) -> verify -> rewrite (compare-and-set of its rows,
//   batched) -> delete (of the legacy object, batched, only after that commit)
//
// with a bounded number of names in flight: the feed pauses while any
// stage's backlog is full. With a grace or --keep-source, a destination that
// was there before is restamped before its rows move (restamper.hpp); with
// --delete-versions, the version to delete is read first (version_resolver.hpp).
// Each name is an Item whose State (item.hpp) follows docs/design.md's state
// machine; a dry run wraps the seam (dry_run.hpp) and changes nothing else. It reaches S3 and the table only through
// the ObjectStore and RowStore seam (store.hpp). docs/design.md explains why this order keeps every row pointing at an
// existing object under a crash at any step, and why no journal is needed: the destination listing and the table are
// the state, so a rerun skips what is done without re-copying.
//
// S3 permissions this needs (docs/privileges.md has the policy JSON):
//   legacy bucket:     s3:ListBucket (prefix), s3:GetObject (copy source),
//                      s3:DeleteObject (not with keep_source)
//   production bucket: s3:ListBucket (prefix), s3:PutObject (copy target),
//                      s3:GetObject (HEAD to verify), s3:AbortMultipartUpload
// PostgreSQL: SELECT and UPDATE(path) on the table (see rows.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/loop.hpp"
#include "core/retry.hpp"
#include "core/shard.hpp"
#include "engine/copier.hpp"
#include "engine/forecast.hpp"
#include "engine/item.hpp"
#include "engine/plan.hpp"
#include "engine/report.hpp"
#include "engine/rows.hpp"
#include "engine/store.hpp"

namespace assetmv::engine {

struct MigrationOptions {
  std::string legacy_prefix;
  std::string dest_prefix;
  bool keep_source = false;
  bool dry_run = false;
  // migrate --rollback, which gives the prefixes the other way round: rows
  // move only onto an object that is already there and identical; nothing
  // is copied, restamped or deleted, and a row with no identical object to
  // go to stays where it is (rows_kept). The way back while the legacy
  // objects are kept (docs/operations.md).
  bool rewrite_only = false;
  std::size_t concurrency = 256;                                // names being copied at once
  std::size_t cas_batch = 500;                                  // rows per compare-and-set statement, at first
  std::chrono::milliseconds cas_target{0};                      // statement time the batches aim for; 0: fixed
  RetryPolicy delete_retry;                                     // keys a DeleteObjects answer says failed transiently
  std::chrono::milliseconds flush_interval{200};                // a partial batch waits at most this long
  std::uint64_t multipart_threshold = s3::kMaxSingleCopyBytes;  // larger objects go through UploadPartCopy
  // The store accepts If-None-Match on a write (the preflight finds out):
  // Swift's s3api refuses every conditional PUT with 501, so there copies go
  // out without it, as on stores that ignore it.
  bool conditional_writes = true;
  // --storage-class: every copy goes into this class; empty: each keeps the
  // class its legacy object is listed in (CopyObject would make it STANDARD).
  std::string storage_class = {};
  // Every copy through UploadPartCopy, whatever its size: Ceph RGW 16
  // ignores encryption headers on CopyObject (and honours them on
  // CreateMultipartUpload), so --sse off AWS needs it; on AWS a KMS copy's
  // ETag is no MD5, and the multipart copy carries the source's ETag in its
  // metadata, which proves it identical to a later run.
  bool multipart_always = false;
  // --delete-grace: a legacy object is deleted only once its destination is
  // older than this (plan.hpp's grace_elapsed); younger ones are kept and
  // counted, and a later run deletes them. 0: delete after the commit.
  std::chrono::seconds delete_grace{0};
  // --delete-versions: each delete names the version copied (read by a HEAD
  // just before it), so on a versioned legacy bucket it is removed, not
  // hidden behind a delete marker, and no other version is touched.
  bool delete_versions = false;
  // Bytes of object data held in memory at once by copies between two
  // services (--memory-budget): bounds the process's memory whatever the
  // object sizes and the number of copies in flight.
  std::uint64_t memory_budget = kDefaultMemoryBudget;
  // --shard K/N: only the names in this shard, in the table scan, both
  // listings and so every action; N such runs together do what one does.
  Shard shard;
  std::function<std::chrono::system_clock::time_point()> clock = [] { return std::chrono::system_clock::now(); };
  ScanOptions scan;
};

struct Progress {
  std::uint64_t legacy_rows = 0;  // rows to migrate, known once the table is read
  std::uint64_t rows_done = 0;    // rewritten, superseded or settled otherwise
  std::uint64_t names_done = 0;
  std::uint64_t objects_listed = 0;
  std::uint64_t objects_copied = 0;
  std::uint64_t objects_deleted = 0;
  std::uint64_t needs_human = 0;
  bool listing_done = false;
  bool paused = false;
};

struct Hooks {
  std::function<bool()> stop_requested = [] { return false; };
  // Polled a few times per second: a reason while the operator wants the
  // run paused (no new copy or delete starts; what is in flight finishes
  // and its rows are committed), nullopt to run.
  std::function<std::optional<std::string>()> pause_requested;
  std::function<void(const Progress&)> on_progress;  // called a few times per second
  // Each move of an item from one state to the next, as it happens (the
  // unit tests' fakes check every one against allowed()).
  std::function<void(const Item&, State from, State to)> on_transition;
};

enum class Outcome {
  Complete,    // everything moved and rewritten
  NeedsHuman,  // finished; the report lists what needs a human
  Stopped,     // a signal or a fatal error stopped the run; run again to resume
};

struct RunResult {
  Outcome outcome = Outcome::Complete;
  std::optional<Error> error;  // why it stopped, if it did
  std::string stop_reason;
  double paused_seconds = 0;  // time spent paused by the operator
};

class Migration {
 public:
  Migration(EventLoop& loop, ObjectStore& store, RowStore& rows, MigrationOptions options, Hooks hooks);
  ~Migration();
  Migration(const Migration&) = delete;
  Migration& operator=(const Migration&) = delete;

  RunResult run();
  const Report& report() const;
  // What a real run would send beyond the listings (meaningful after a dry run).
  Forecast forecast() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace assetmv::engine

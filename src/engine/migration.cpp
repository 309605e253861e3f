#include "engine/migration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <unordered_set>
#include <vector>

#include "core/log.hpp"
#include "core/retry.hpp"
#include "engine/join.hpp"
#include "engine/lister.hpp"
#include "engine/spool.hpp"
#include "s3/parsers.hpp"

namespace assetmv::engine {

namespace {

// DeleteObjects requests in flight at once: deletes are cheap and batched;
// more would only compete with the copies for the store's write rate.
constexpr std::size_t kMaxDeleteRequests = 4;
// Names waiting for their compare-and-set, in batches, before the join
// pauses: bounds memory whatever the object count.
constexpr std::size_t kCasBacklogBatches = 4;
// Objects copied across two different services go through this client's
// memory (GET then PUT), so they are capped.
constexpr std::uint64_t kMaxCrossServiceBytes = 256ULL * 1024 * 1024;
// Requests failing for good in a row before the run calls the store down and
// stops: each already had 10 attempts, so at a 5% fault rate even two in a
// row would be a one-in-10^26 event; 32 leaves room and stops an outage fast.
constexpr int kOutageFailuresInARow = 32;

bool same_service(const s3::Bucket& a, const s3::Bucket& b) {
  if (a.endpoint.is_aws() && b.endpoint.is_aws()) return true;  // cross-region copies work within AWS
  return a.endpoint.scheme == b.endpoint.scheme && a.endpoint.authority() == b.endpoint.authority();
}

// One name on its way through copy -> verify -> compare-and-set -> delete.
struct Item {
  std::string name;
  std::optional<s3::ObjectEntry> src;
  std::optional<s3::ObjectEntry> dst;
  std::vector<std::int64_t> ids;
  bool in_copy = false;  // counted in Impl::copying
};
using ItemPtr = std::shared_ptr<Item>;

}  // namespace

Sameness compare_objects(const s3::ObjectEntry& a, const s3::ObjectEntry& b) {
  if (a.size != b.size) return Sameness::Different;
  if (s3::etag_equal(a.etag, b.etag)) return Sameness::Same;
  if (s3::etag_is_md5(a.etag) && s3::etag_is_md5(b.etag)) return Sameness::Different;
  return Sameness::Unknown;
}

struct Migration::Impl {
  EventLoop& loop;
  s3::Client& s3;
  const s3::Bucket& src_bucket;
  const s3::Bucket& dst_bucket;
  DbSession& db;
  MigrationOptions o;
  Hooks hooks;
  bool cross_service = false;

  Report report;
  Spool spool;
  std::unique_ptr<Feed> feed;

  std::size_t copying = 0;
  OutageBreaker outage{kOutageFailuresInARow};
  std::vector<ItemPtr> cas_queue;
  std::vector<std::string> delete_queue;
  std::size_t deletes_in_flight = 0;
  bool feeding_done = false;
  bool stopping = false;
  bool pump_posted = false;
  std::optional<Error> fatal;
  std::string stop_reason;
  std::uint64_t rows_done = 0;
  std::uint64_t names_done = 0;
  EventLoop::TimerId tick_timer = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  bool first_copy_logged = false;

  Impl(EventLoop& l, s3::Client& c, const s3::Bucket& s, const s3::Bucket& d, DbSession& dbs, MigrationOptions opt,
       Hooks h)
      : loop(l), s3(c), src_bucket(s), dst_bucket(d), db(dbs), o(std::move(opt)), hooks(std::move(h)) {
    cross_service = !same_service(src_bucket, dst_bucket);
  }

  std::string src_key(const Item& i) const { return o.legacy_prefix + i.name; }
  std::string dst_key(const Item& i) const { return o.dest_prefix + i.name; }

  // ---- the feed -----------------------------------------------------------

  void request_pump() {
    if (pump_posted) return;
    pump_posted = true;
    loop.post([this] {
      pump_posted = false;
      pump();
    });
  }

  bool backlog_full() const {
    return copying >= o.concurrency || cas_queue.size() >= o.cas_batch * kCasBacklogBatches ||
           delete_queue.size() >= s3::kMaxDeleteKeys * kMaxDeleteRequests;
  }

  void pump() {
    if (!stopping && !feeding_done) {
      auto state =
          feed->pump([this] { return !stopping && !backlog_full(); }, [this](Group g) { start(std::move(g)); });
      if (!state) {
        stop_fatal(state.error());
      } else if (*state == Feed::State::Ended) {
        feeding_done = true;
        logging::debug("migrate.feed_done", "every name has been handed out");
      }
    }
    if (cas_queue.size() >= o.cas_batch || ((feeding_done || stopping) && copying == 0)) flush_cas();
    if (delete_queue.size() >= s3::kMaxDeleteKeys || feeding_done || stopping) flush_deletes();
  }

  void start(Group g) {
    auto item = std::make_shared<Item>();
    item->name = std::move(g.name);
    item->src = std::move(g.src);
    item->dst = std::move(g.dst);
    item->ids = std::move(g.legacy_rows);
    if (item->src) {
      if (!item->dst && dst_key(*item).size() > s3::kMaxKeyBytes)
        return conflict(item,
                        fmt::format("the destination key would be {} bytes, over S3's {}-byte limit; the object and "
                                    "its rows stay where they are",
                                    dst_key(*item).size(), s3::kMaxKeyBytes),
                        "key_too_long");
      if (!item->dst) return copy(item);
      return settle_existing(item, *item->dst,
                             "the destination already holds different content (size or MD5 ETag differ)",
                             "the destination has the same size but an ETag that is not an MD5; cannot prove it "
                             "identical");
    }
    if (item->ids.empty()) {  // only a destination object: nothing to do
      ++names_done;
      return;
    }
    if (item->dst) {
      // The rows point at a legacy object that no longer exists, and the
      // destination holds one: pointing the rows there repairs them.
      logging::warn("migrate.legacy_missing",
                    fmt::format("{} is missing but {} exists; rewriting its rows", src_key(*item), dst_key(*item)),
                    {{"row_ids", item->ids}});
      ++report.counts.objects_already_in_place;
      return after_copy(item);
    }
    report.counts.dangling_rows += item->ids.size();
    rows_done += item->ids.size();
    ++names_done;
    report.needs_human({"dangling_row", src_key(*item), dst_key(*item), item->ids,
                        "no object at the legacy key nor at the destination; the row is left as is"});
  }

  // ---- copy and verify ----------------------------------------------------

  s3::CopyParams copy_params(const Item& i) const {
    s3::CopyParams p;
    p.source_bucket = src_bucket.name;
    p.source_key = src_key(i);
    p.dest_key = dst_key(i);
    p.if_match = i.src->etag;                // only the version we listed
    p.if_none_match = o.conditional_writes;  // never overwrite what is there (where the store honours it)
    return p;
  }

  void copy(const ItemPtr& item) {
    item->in_copy = true;
    ++copying;
    if (!first_copy_logged) {
      first_copy_logged = true;
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      logging::info("migrate.first_copy", fmt::format("first copy {:.2f} s after the start", s),
                    {{"seconds", s}, {"key", src_key(*item)}});
    }
    if (o.dry_run) {
      loop.post([this, item] { copied(item); });
      return;
    }
    const auto& src = *item->src;
    if (cross_service) return copy_across(item);
    if (src.size > o.multipart_threshold) {
      const std::uint64_t part = std::max(s3::kMinPartBytes, std::min(o.multipart_threshold, s3::kMaxSingleCopyBytes));
      s3.multipart_copy(dst_bucket, copy_params(*item), src.size, part,
                        [this, item](Result<std::string> r) { on_copy(item, std::move(r), true); });
      return;
    }
    s3.copy_object(dst_bucket, copy_params(*item),
                   [this, item](Result<std::string> r) { on_copy(item, std::move(r), false); });
  }

  // Two services cannot copy server-side: read the object and write it,
  // still refusing to overwrite (If-None-Match on PUT).
  void copy_across(const ItemPtr& item) {
    if (item->src->size > kMaxCrossServiceBytes)
      return fail_item(
          item, fmt::format("{} bytes is too large to copy between two services through memory", item->src->size));
    s3.get_object(src_bucket, src_key(*item), [this, item](Result<s3::GetResult> got) {
      if (!got) return on_copy(item, tl::unexpected(got.error()), false);
      if (!s3::etag_equal(got->info.etag, item->src->etag))
        return fail_item(item, "the legacy object changed since it was listed; run again");
      s3::PutParams p;
      p.content_type = got->info.content_type.empty() ? "application/octet-stream" : got->info.content_type;
      p.if_none_match = o.conditional_writes;
      s3.put_object(dst_bucket, dst_key(*item), std::move(got->body), p,
                    [this, item](Result<std::string> r) { on_copy(item, std::move(r), false); });
    });
  }

  void on_copy(const ItemPtr& item, Result<std::string> etag, bool multipart) {
    if (etag) {
      if (!multipart && s3::etag_is_md5(item->src->etag)) {
        if (s3::etag_equal(*etag, item->src->etag)) return copied(item);
        return fail_item(item, fmt::format("the copy's ETag {} differs from the source's {}; the destination is "
                                           "left for inspection and the row is unchanged",
                                           *etag, item->src->etag));
      }
      return verify_by_head(item, multipart);
    }
    const Error& e = etag.error();
    if (e.kind == ErrorKind::PreconditionFailed) return check_existing(item);
    if (e.kind == ErrorKind::AccessDenied || e.code == "NoSuchBucket") {
      fail_item(item, e.describe());
      return stop_fatal(e);
    }
    if (e.kind == ErrorKind::NotFound)
      return fail_item(item, "the legacy object disappeared before it could be copied: " + e.describe());
    fail_request(item, "copy failed: ", e);
  }

  // Non-MD5 ETags (multipart, KMS): compare sizes, and for a multipart copy
  // (whose source condition some stores ignore) re-check the source's ETag.
  void verify_by_head(const ItemPtr& item, bool multipart) {
    s3.head_object(dst_bucket, dst_key(*item), [this, item, multipart](Result<s3::ObjectInfo> d) {
      if (!d) return fail_request(item, "cannot read back the copy: ", d.error());
      if (d->size != item->src->size)
        return fail_item(item, fmt::format("the copy has {} bytes, the source {}", d->size, item->src->size));
      if (!multipart) return copied(item);
      s3.head_object(src_bucket, src_key(*item), [this, item](Result<s3::ObjectInfo> s) {
        if (!s) return fail_request(item, "cannot re-read the source: ", s.error());
        if (!s3::etag_equal(s->etag, item->src->etag))
          return fail_item(item, "the legacy object changed during its multipart copy; run again");
        copied(item);
      });
    });
  }

  // The copy was refused by a condition: either the destination appeared
  // since it was listed, or the source changed.
  void check_existing(const ItemPtr& item) {
    s3.head_object(dst_bucket, dst_key(*item), [this, item](Result<s3::ObjectInfo> d) {
      if (!d) {
        if (d.error().kind == ErrorKind::NotFound)
          return fail_item(item, "the legacy object changed since it was listed (copy condition failed); run again");
        return fail_request(item, "copy refused and the destination cannot be read: ", d.error());
      }
      end_copy(item);
      settle_existing(item, {dst_key(*item), d->etag, d->size, d->last_modified},
                      "the destination appeared during the run with different content",
                      "the destination appeared during the run; its ETag cannot prove it identical", &*d);
    });
  }

  // A destination object already exists for this name: identical content
  // counts as done (the rows move on to it); anything else is a conflict,
  // never overwritten. `head` is the destination's HEAD when the caller has
  // one already: only it carries the metadata that can settle an Unknown.
  void settle_existing(const ItemPtr& item, const s3::ObjectEntry& dst, const char* if_different,
                       const char* if_unknown, const s3::ObjectInfo* head = nullptr) {
    switch (compare_objects(*item->src, dst)) {
      case Sameness::Same:
        ++report.counts.objects_already_in_place;
        return after_copy(item);
      case Sameness::Different:
        return conflict(item, if_different);
      case Sameness::Unknown:
        if (head != nullptr) return settle_by_metadata(item, *head, if_unknown);
        return s3.head_object(dst_bucket, dst_key(*item), [this, item, if_unknown](Result<s3::ObjectInfo> d) {
          if (!d && d.error().kind == ErrorKind::NotFound)
            return fail_item(item, "the destination disappeared since it was listed; run again");
          if (!d) return fail_request(item, "cannot read the destination to compare it: ", d.error());
          settle_by_metadata(item, *d, if_unknown);
        });
    }
  }

  // Same size, ETags not comparable (a multipart copy's is not an MD5): a
  // copy this tool made records the source's ETag in its metadata, which
  // settles it; anything else stays a conflict.
  void settle_by_metadata(const ItemPtr& item, const s3::ObjectInfo& dst, const char* if_unknown) {
    if (dst.size == item->src->size && !dst.source_etag.empty() && s3::etag_equal(dst.source_etag, item->src->etag)) {
      ++report.counts.objects_already_in_place;
      return after_copy(item);
    }
    conflict(item, if_unknown);
  }

  void end_copy(const ItemPtr& item) {
    if (item->in_copy) {
      item->in_copy = false;
      --copying;
      request_pump();
    }
  }

  void copied(const ItemPtr& item) {
    outage.succeeded();
    end_copy(item);
    ++report.counts.objects_copied;
    if (item->ids.empty()) ++report.counts.orphan_objects_moved;
    after_copy(item);
  }

  // ---- compare-and-set ----------------------------------------------------

  void after_copy(const ItemPtr& item) {
    if (fatal) {
      // The run is stopping on an error: leave the rows on the legacy object
      // (it still exists) rather than retry a failing database; a rerun
      // finds the copy in place and finishes the name.
      ++names_done;
      return;
    }
    if (item->ids.empty()) return to_delete(item);
    cas_queue.push_back(item);
    if (cas_queue.size() >= o.cas_batch) flush_cas();
  }

  void flush_cas() {
    if (cas_queue.empty()) return;
    std::vector<ItemPtr> batch;
    batch.swap(cas_queue);
    if (o.dry_run) {
      for (auto& item : batch) {
        report.counts.rows_rewritten += item->ids.size();
        to_delete(item);
      }
      return;
    }
    std::vector<db::CasItem> cas;
    for (const auto& item : batch)
      for (auto id : item->ids) cas.push_back({id, src_key(*item), dst_key(*item)});
    auto updated = db.run("compare-and-set", [&](db::PathTable& t) { return t.compare_and_set(cas); });
    if (!updated) {
      // Nothing was committed: the rows still point at the legacy objects,
      // which are all still there. A rerun picks them up.
      return stop_fatal(updated.error());
    }
    const std::unordered_set<std::int64_t> done(updated->begin(), updated->end());
    for (auto& item : batch) {
      for (auto id : item->ids) {
        if (done.count(id) != 0U) {
          ++report.counts.rows_rewritten;
        } else {
          // The live application changed (or deleted) the row first; it
          // writes only modern paths, so the row no longer needs us.
          ++report.counts.rows_superseded;
          logging::debug("migrate.superseded", "row changed by the application first", {{"id", id}});
        }
      }
      to_delete(item);
    }
  }

  // ---- delete ---------------------------------------------------------------

  void to_delete(const ItemPtr& item) {
    rows_done += item->ids.size();
    ++names_done;
    if (!item->src) return;  // the legacy object was already gone
    if (o.keep_source) {
      ++report.counts.legacy_objects_kept;
      return;
    }
    if (o.dry_run) {
      ++report.counts.legacy_objects_deleted;
      return;
    }
    auto key = src_key(*item);
    if (!s3::xml_escape(key)) {
      // A key XML 1.0 cannot carry (control characters): delete it alone.
      ++deletes_in_flight;
      s3.delete_object(src_bucket, key, [this, key](Result<bool> r) {
        --deletes_in_flight;
        if (r) {
          ++report.counts.legacy_objects_deleted;
        } else {
          ++report.counts.failures;
          report.needs_human({"delete_failed", key, "", {}, r.error().describe()});
        }
        request_pump();
      });
      return;
    }
    delete_queue.push_back(std::move(key));
    if (delete_queue.size() >= s3::kMaxDeleteKeys) flush_deletes();
  }

  void flush_deletes() {
    while (!delete_queue.empty() && deletes_in_flight < kMaxDeleteRequests) {
      const std::size_t n = std::min(delete_queue.size(), s3::kMaxDeleteKeys);
      std::vector<std::string> keys(std::make_move_iterator(delete_queue.begin()),
                                    std::make_move_iterator(delete_queue.begin() + static_cast<std::ptrdiff_t>(n)));
      delete_queue.erase(delete_queue.begin(), delete_queue.begin() + static_cast<std::ptrdiff_t>(n));
      ++deletes_in_flight;
      s3.delete_objects(src_bucket, keys, [this, keys](Result<s3::DeleteResult> r) {
        --deletes_in_flight;
        if (!r && r.error().kind == ErrorKind::Interrupted) {
          // Not sent, for a stop: the legacy objects stay, and a rerun deletes them.
        } else if (!r) {
          // The rows already point at the copies; only the cleanup is left.
          for (const auto& k : keys) {
            ++report.counts.failures;
            report.needs_human({"delete_failed", k, "", {}, r.error().describe()});
          }
        } else {
          // Quiet mode: the answer lists only the keys that failed.
          report.counts.legacy_objects_deleted += keys.size() - std::min(keys.size(), r->failed.size());
          for (const auto& f : r->failed) {
            ++report.counts.failures;
            report.needs_human({"delete_failed", f.key, "", {}, fmt::format("{}: {}", f.code, f.message)});
          }
        }
        request_pump();
      });
    }
  }

  // ---- outcomes -----------------------------------------------------------

  // Cannot be moved without a human's decision; nothing is changed for it.
  void conflict(const ItemPtr& item, std::string why, const char* kind = "conflict") {
    end_copy(item);
    ++report.counts.conflicts;
    rows_done += item->ids.size();
    ++names_done;
    report.needs_human({kind, src_key(*item), dst_key(*item), item->ids, std::move(why)});
  }

  void fail_item(const ItemPtr& item, std::string why) {
    end_copy(item);
    ++report.counts.failures;
    rows_done += item->ids.size();
    ++names_done;
    logging::warn("migrate.item_failed", why, {{"key", src_key(*item)}});
    report.needs_human({"failure", src_key(*item), dst_key(*item), item->ids, std::move(why)});
  }

  // A request that failed after all its retries: the item is reported, and
  // many such failures in a row mean the store is down, which stops the run.
  void fail_request(const ItemPtr& item, std::string_view what, const Error& e) {
    if (e.kind == ErrorKind::Interrupted) return end_copy(item);  // not sent, for a stop: a rerun does it
    fail_item(item, std::string(what) + e.describe());
    if (outage.failed(e) && !stopping)
      stop_fatal(Error{e.kind, e.code,
                       fmt::format("{} requests in a row failed after all their retries; the store looks unavailable, "
                                   "run again when it is back (last: {})",
                                   outage.in_a_row(), e.describe())});
  }

  void stop_fatal(const Error& e) {
    if (!fatal) {
      fatal = e;
      stop_reason = "error";
      logging::error("migrate.stopping", "stopping: " + e.describe(), {{"kind", to_string(e.kind)}});
    }
    stopping = true;
    cas_queue.clear();  // cannot commit them now; a rerun picks them up
    s3.stop_retrying("the run is stopping after an error");
  }

  bool finished() const {
    return (feeding_done || stopping) && copying == 0 && cas_queue.empty() && delete_queue.empty() &&
           deletes_in_flight == 0 && s3.idle();
  }

  Progress progress() const {
    Progress p;
    p.legacy_rows = report.counts.legacy_rows_found;
    p.rows_done = rows_done;
    p.names_done = names_done;
    p.objects_listed = feed ? feed->legacy_listed() : 0;
    p.objects_copied = report.counts.objects_copied;
    p.objects_deleted = report.counts.legacy_objects_deleted;
    p.needs_human = report.needs_human_count();
    p.listing_done = feeding_done;
    return p;
  }

  void tick() {
    if (!stopping && hooks.stop_requested()) {
      stopping = true;
      stop_reason = "signal";
      logging::warn("migrate.signal", "stop requested: finishing the work in flight, then exiting");
      s3.stop_retrying("a stop was requested");  // never wait out a backoff
    }
    flush_cas();
    flush_deletes();
    if (hooks.on_progress) hooks.on_progress(progress());
    request_pump();
    tick_timer = loop.call_after(o.flush_interval, [this] { tick(); });
  }

  RunResult run() {
    RunResult result;
    auto splits =
        read_rows(db, o.scan, o.legacy_prefix, o.dest_prefix, false, spool, report.counts, hooks.stop_requested);
    report.counts.legacy_rows_found = report.counts.rows_legacy;
    if (!splits) {
      result.outcome = Outcome::Stopped;
      result.error = splits.error();
      result.stop_reason = splits.error().kind == ErrorKind::Interrupted ? "signal" : "error";
      return result;
    }
    logging::info("migrate.rows", fmt::format("{} rows under the legacy prefix", report.counts.legacy_rows_found),
                  {{"spool_runs", spool.runs()}, {"listing_ranges", splits->size() + 1}});

    feed =
        std::make_unique<Feed>(loop, s3, Feed::Streams{src_bucket, dst_bucket, o.legacy_prefix, o.dest_prefix, *splits},
                               spool, [this] { pump(); });
    tick_timer = loop.call_after(o.flush_interval, [this] { tick(); });
    if (auto w = loop.run_until("the migration to finish", [this] { return finished(); }); !w) stop_fatal(w.error());
    loop.cancel(tick_timer);
    flush_cas();  // nothing is left normally; after a stop this is a no-op
    if (hooks.on_progress) hooks.on_progress(progress());

    report.counts.legacy_objects_listed = feed->legacy_listed();
    if (stopping) {
      result.outcome = Outcome::Stopped;
      result.error = fatal;
      result.stop_reason = stop_reason;
    } else {
      result.outcome = report.needs_human_count() > 0 ? Outcome::NeedsHuman : Outcome::Complete;
    }
    return result;
  }
};

Migration::Migration(EventLoop& loop, s3::Client& s3, const s3::Bucket& source, const s3::Bucket& dest, DbSession& db,
                     MigrationOptions options, Hooks hooks)
    : impl_(std::make_unique<Impl>(loop, s3, source, dest, db, std::move(options), std::move(hooks))) {}
Migration::~Migration() = default;
RunResult Migration::run() { return impl_->run(); }
const Report& Migration::report() const { return impl_->report; }

}  // namespace assetmv::engine

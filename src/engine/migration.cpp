#include "engine/migration.hpp"

#include <fmt/format.h>

#include <memory>

#include "core/log.hpp"
#include "engine/copier.hpp"
#include "engine/deleter.hpp"
#include "engine/dry_run.hpp"
#include "engine/forecast.hpp"
#include "engine/join.hpp"
#include "engine/restamper.hpp"
#include "engine/rewriter.hpp"
#include "engine/spool.hpp"
#include "engine/verifier.hpp"
#include "engine/version_resolver.hpp"

namespace assetmv::engine {

namespace {

// Rows waiting for their compare-and-set before the feed pauses: bounds
// memory whatever the object count (a few hundred bytes a row), and is
// about six seconds of copies at S3's 3,500 writes/s per prefix, so a row
// lock held by the application, or a statement that slow, costs the copies
// nothing (issue 25's lock experiment: tests/e2e/test_database_stall.py).
constexpr std::size_t kCasBacklogRows = 20'000;
// Requests failing for good in a row before the run calls the store down and
// stops: each already had 10 attempts, so at a 5% fault rate even two in a
// row would be a one-in-10^26 event; 32 leaves room and stops an outage fast.
constexpr int kOutageFailuresInARow = 32;

}  // namespace

struct Migration::Impl {
  EventLoop& loop;
  MigrationOptions o;
  Hooks hooks;
  // A dry run: the seam wrapped, so every stage runs as in a real run and
  // nothing is written (dry_run.hpp). Declared before the references to it.
  std::unique_ptr<RecordingStore> recording;
  std::unique_ptr<CountingRows> counting;
  ObjectStore& store;
  RowStore& rows;

  Report report;
  Spool spool;
  std::unique_ptr<Feed> feed;
  Verifier verifier;
  Copier copier;
  Restamper restamper;
  Rewriter rewriter;
  VersionResolver versions;
  Deleter deleter;

  std::size_t copying = 0;  // names in the copy and verify stages
  OutageBreaker outage{kOutageFailuresInARow};
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
  bool paused = false;
  std::chrono::steady_clock::time_point paused_since;
  std::chrono::steady_clock::duration paused_total{};

  Impl(EventLoop& l, ObjectStore& s, RowStore& r, MigrationOptions opt, Hooks h)
      : loop(l),
        o(std::move(opt)),
        hooks(std::move(h)),
        recording(o.dry_run ? std::make_unique<RecordingStore>(l, s) : nullptr),
        counting(o.dry_run ? std::make_unique<CountingRows>(l, r) : nullptr),
        store(recording ? *recording : s),
        rows(counting ? *counting : r),
        verifier(store, [this](const ItemPtr& i, Settled st) { settled(i, std::move(st)); }),
        copier(loop, store,
               {o.multipart_threshold, o.conditional_writes, o.storage_class, o.multipart_always, o.memory_budget},
               verifier, [this](const ItemPtr& i, Settled st) { settled(i, std::move(st)); }),
        restamper(store, [this](const ItemPtr& i, std::optional<Settled> st) { restamped(i, std::move(st)); }),
        rewriter(
            rows, {o.cas_batch, o.cas_target}, [this](const ItemPtr& i, std::size_t n) { rewritten(i, n); },
            [this](const Error& e) { stop_fatal(e); }, [this](const ItemPtr& i) { move(*i, State::Deferred); }),
        versions(store, [this](const ItemPtr& i, Resolved rv) { resolved(i, std::move(rv)); }),
        deleter(
            loop, store, {o.delete_retry}, [this](std::size_t n) { report.counts.legacy_objects_deleted += n; },
            [this](const std::string& key, std::string why) { delete_failed(key, std::move(why)); }) {}

  // A legacy object whose rows have moved but which stays: reported for a human.
  void delete_failed(const std::string& key, std::string why) {
    ++report.counts.failures;
    report.needs_human({"delete_failed", key, "", {}, std::move(why)});
  }

  // The one place an item changes state: along an arrow of the state
  // machine, or it is a bug, said loudly (the unit tests fail on it).
  void move(Item& item, State to) {
    const State from = item.state;
    if (!allowed(from, to))
      logging::error("migrate.state",
                     fmt::format("{}: no way from {} to {} (a bug)", item.legacy_key, to_string(from), to_string(to)));
    if (hooks.on_transition) hooks.on_transition(item, from, to);
    item.state = to;
  }

  // ---- the feed and the plan ----------------------------------------------

  // A posted pump can outlive the run (the loop goes on to the next one, as
  // in the tests): it holds only a weak token and does nothing then.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  void request_pump() {
    if (pump_posted) return;
    pump_posted = true;
    loop.post([this, token = std::weak_ptr<bool>(alive)] {
      if (token.expired()) return;
      pump_posted = false;
      pump();
    });
  }

  bool backlog_full() const {
    return paused || copying + restamper.in_flight() + versions.in_flight() >= o.concurrency ||
           rewriter.queued_rows() >= kCasBacklogRows || deleter.queued() >= s3::kMaxDeleteKeys * Deleter::kMaxRequests;
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
    if (((feeding_done || stopping) && copying == 0)) rewriter.flush();
    if (feeding_done || stopping) deleter.flush();
  }

  void start(Group g) {
    auto item = std::make_shared<Item>();
    item->legacy_key = o.legacy_prefix + g.name;
    item->dest_key = o.dest_prefix + g.name;
    item->name = std::move(g.name);
    item->src = std::move(g.src);
    item->dst = std::move(g.dst);
    item->ids = std::move(g.legacy_rows);
    switch (plan(*item)) {
      case Action::Copy:
        if (o.rewrite_only) return kept(*item);
        ++copying;
        move(*item, State::Copying);
        log_first_copy(*item);
        return copier.start(item);
      case Action::Compare:
        // A rollback leaves the rows on an object the application changed
        // since; one that cannot be proved either way goes to the verifier.
        if (o.rewrite_only && compare_objects(*item->src, *item->dst) == Sameness::Different) return kept(*item);
        ++copying;
        move(*item, State::Copying);
        return verifier.existing(item);
      case Action::RepairRows:
        // The rows point at a legacy object that no longer exists, and the
        // destination holds one: pointing the rows there repairs them.
        logging::warn("migrate.legacy_missing",
                      fmt::format("{} is missing but {} exists; rewriting its rows", item->legacy_key, item->dest_key),
                      {{"row_ids", item->ids}});
        ++report.counts.objects_already_in_place;
        move(*item, State::Verified);
        return to_rewrite(item);
      case Action::Dangling:
        report.counts.dangling_rows += item->ids.size();
        done(*item, State::NeedsHuman);
        return report.needs_human({"dangling_row", item->legacy_key, item->dest_key, item->ids,
                                   "no object at the legacy key nor at the destination; the row is left as is"});
      case Action::KeyTooLong:
        if (o.rewrite_only) return kept(*item);
        return conflict(*item, {Settled::Kind::Conflict,
                                fmt::format("the destination key would be {} bytes, over S3's {}-byte limit; the "
                                            "object and its rows stay where they are",
                                            item->dest_key.size(), s3::kMaxKeyBytes),
                                "key_too_long"});
      case Action::Nothing:
        return done(*item, State::Done);
    }
  }

  void log_first_copy(const Item& item) {
    if (first_copy_logged) return;
    first_copy_logged = true;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    logging::info("migrate.first_copy", fmt::format("first copy {:.2f} s after the start", s),
                  {{"seconds", s}, {"key", item.legacy_key}});
  }

  // ---- what the copy and verify stages answer ------------------------------

  void settled(const ItemPtr& item, Settled s) {
    --copying;
    request_pump();
    if (s.kind == Settled::Kind::Failed && s.error && s.error->kind == ErrorKind::Interrupted)
      s.kind = Settled::Kind::NotSent;
    switch (s.kind) {
      case Settled::Kind::Copied:
        outage.succeeded();
        item->copied_now = true;
        ++report.counts.objects_copied;
        if (item->ids.empty()) ++report.counts.orphan_objects_moved;
        move(*item, State::Verified);
        return to_rewrite(item);
      case Settled::Kind::InPlace:
        ++report.counts.objects_already_in_place;
        move(*item, State::Verified);
        return to_rewrite(item);
      case Settled::Kind::Conflict:
        return conflict(*item, std::move(s));
      case Settled::Kind::Unreadable:
        return unreadable(*item, std::move(s));
      case Settled::Kind::Failed:
        return failed(*item, std::move(s));
      case Settled::Kind::NotSent:
        return move(*item, State::Deferred);  // a rerun does it
    }
  }

  // ---- restamp, rewrite and delete -----------------------------------------

  // From Verified, or Restamping once restamped.
  void to_rewrite(const ItemPtr& item) {
    if (fatal) {
      // The run is stopping on an error: leave the rows on the legacy object
      // (it still exists) rather than retry a failing database; a rerun
      // finds the copy in place and finishes the name.
      ++names_done;
      return move(*item, State::Deferred);
    }
    if (item->ids.empty()) return to_delete(item);
    if (item->state == State::Verified && !o.rewrite_only && Restamper::needed(*item, o.delete_grace, o.keep_source)) {
      move(*item, State::Restamping);
      return restamper.start(item);
    }
    move(*item, State::Rewriting);
    rewriter.add(item);
  }

  void restamped(const ItemPtr& item, std::optional<Settled> not_restamped) {
    request_pump();
    if (!not_restamped) return to_rewrite(item);
    if (not_restamped->kind == Settled::Kind::NotSent) return move(*item, State::Deferred);
    failed(*item, std::move(*not_restamped));
  }

  void rewritten(const ItemPtr& item, std::size_t updated) {
    report.counts.rows_rewritten += updated;
    report.counts.rows_superseded += item->ids.size() - updated;
    move(*item, State::Rewritten);
    to_delete(item);
  }

  // From Verified (no rows) or Rewritten.
  void to_delete(const ItemPtr& item) {
    if (!item->src || o.rewrite_only) return done(*item, State::Done);  // gone already, or never deleted
    if (o.keep_source) {
      ++report.counts.legacy_objects_kept;
      return done(*item, State::Done);
    }
    if (in_grace(*item)) {
      ++report.counts.legacy_objects_in_grace;
      return done(*item, State::Done);
    }
    if (o.delete_versions) {
      move(*item, State::Resolving);
      return versions.start(item);
    }
    deleter.add({item->legacy_key});
    done(*item, State::Done);
  }

  void resolved(const ItemPtr& item, Resolved r) {
    request_pump();
    switch (r.kind) {
      case Resolved::Kind::Delete:
        deleter.add(std::move(r.object));
        return done(*item, State::Done);
      case Resolved::Kind::Gone:  // someone else deleted it
        return done(*item, State::Done);
      case Resolved::Kind::NotSent:  // a rerun deletes it
        return done(*item, State::Deferred);
      case Resolved::Kind::Failed:
        delete_failed(item->legacy_key, std::move(r.why));
        return done(*item, State::Failed);
    }
  }

  // Kept for a later run: rows left it in this run (whoever rewrote them),
  // this run wrote its destination, or the destination is younger than the grace.
  bool in_grace(const Item& item) const {
    if (o.delete_grace.count() <= 0) return false;
    if (!item.ids.empty() || item.copied_now) return true;
    return !grace_elapsed(item.dst, o.delete_grace, o.clock());
  }

  // ---- outcomes -----------------------------------------------------------

  // The item's last state: its rows are settled (moved, or left for a human).
  void done(Item& item, State last) {
    rows_done += item.ids.size();
    ++names_done;
    move(item, last);
  }

  // --rollback: no identical object to move the rows to (the application
  // wrote or changed it since): they stay where they are. From Listed.
  void kept(Item& item) {
    report.counts.rows_kept += item.ids.size();
    done(item, State::Done);
  }

  // Cannot be moved without a human's decision; nothing is changed for it.
  void conflict(Item& item, Settled s) {
    ++report.counts.conflicts;
    done(item, State::NeedsHuman);
    report.needs_human({s.report_kind, item.legacy_key, item.dest_key, item.ids, std::move(s.why)});
  }

  // Not a failure: the object is as its owner left it (archived, or locked
  // by a key we do not have); its rows stay on it, and a run after the
  // human's action moves it.
  void unreadable(Item& item, Settled s) {
    ++(s.report_kind == "archived" ? report.counts.archived_objects : report.counts.sse_c_objects);
    done(item, State::NeedsHuman);
    logging::warn("migrate.unreadable", s.why, {{"key", item.legacy_key}});
    report.needs_human({s.report_kind, item.legacy_key, item.dest_key, item.ids, std::move(s.why)});
  }

  // Reported and left exactly as it was. A request's error that would fail
  // every item stops the run; so do many failures in a row (an outage).
  void failed(Item& item, Settled s) {
    ++report.counts.failures;
    done(item, State::Failed);
    logging::warn("migrate.item_failed", s.why, {{"key", item.legacy_key}});
    report.needs_human({"failure", item.legacy_key, item.dest_key, item.ids, std::move(s.why)});
    if (!s.error) return;
    const Error& e = *s.error;
    if (stops_the_run(e)) return stop_fatal(e);
    if (outage.failed(e) && !stopping)
      stop_fatal(Error{e.kind, e.code,
                       fmt::format("{} requests in a row failed after all their retries; the store looks unavailable, "
                                   "run again when it is back (last: {})",
                                   outage.in_a_row(), e.describe())});
  }

  void stop_fatal(const Error& e) {
    if (fatal) return;
    fatal = e;
    stop_reason = "error";
    logging::error("migrate.stopping", "stopping: " + e.describe(), {{"kind", to_string(e.kind)}});
    stopping = true;
    rewriter.drop();  // cannot commit them now; a rerun picks them up
    wind_down("the run is stopping after an error");
  }

  void stop_on_signal() {
    stopping = true;
    stop_reason = "signal";
    logging::warn("migrate.signal", "stop requested: finishing the work in flight, then exiting");
    wind_down("a stop was requested");
  }

  // Either stop: no backoff is waited out, in the deleter or the client
  // (which also lifts a pause's hold, so the last copies can be verified).
  void wind_down(const std::string& why) {
    deleter.stop();
    store.stop_retrying(why);
    rows.stop(why);
  }

  bool finished() const {
    return (feeding_done || stopping) && copying == 0 && restamper.in_flight() == 0 && versions.in_flight() == 0 &&
           rewriter.idle() && deleter.idle() && store.idle();
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
    p.paused = paused;
    return p;
  }

  // The operator's pause: no name is admitted and no delete starts while it
  // holds; copies in flight finish and their rows are committed.
  void poll_pause() {
    if (!hooks.pause_requested || stopping) return;
    const auto reason = hooks.pause_requested();
    const auto now = std::chrono::steady_clock::now();
    if (reason && !paused) {
      paused = true;
      paused_since = now;
      logging::warn("migrate.paused",
                    fmt::format("paused ({}): no new copy or delete starts; the work in flight finishes", *reason),
                    {{"reason", *reason}});
    } else if (!reason && paused) {
      paused = false;
      paused_total += now - paused_since;
      logging::info("migrate.resumed", fmt::format("resumed after {:.1f} s paused",
                                                   std::chrono::duration<double>(now - paused_since).count()));
    } else {
      return;
    }
    deleter.set_paused(paused);
    store.hold(paused);  // copies queued behind a rate cap are not sent either
    request_pump();
  }

  double paused_seconds() const {
    auto total = paused_total;
    if (paused) total += std::chrono::steady_clock::now() - paused_since;
    return std::chrono::duration<double>(total).count();
  }

  void tick() {
    if (!stopping && hooks.stop_requested()) stop_on_signal();
    poll_pause();
    rewriter.flush();
    deleter.flush();
    if (hooks.on_progress) hooks.on_progress(progress());
    request_pump();
    tick_timer = loop.call_after(o.flush_interval, [this] { tick(); });
  }

  RunResult run() {
    RunResult result;
    ScanOptions scan = o.scan;
    scan.shard = o.shard;
    auto splits =
        read_rows(rows, scan, o.legacy_prefix, o.dest_prefix, false, spool, report.counts, hooks.stop_requested);
    report.counts.legacy_rows_found = report.counts.rows_legacy;
    if (!splits) {
      result.outcome = Outcome::Stopped;
      result.error = splits.error();
      result.stop_reason = splits.error().kind == ErrorKind::Interrupted ? "signal" : "error";
      return result;
    }
    logging::info("migrate.rows", fmt::format("{} rows under the legacy prefix", report.counts.legacy_rows_found),
                  {{"spool_runs", spool.runs()}, {"listing_ranges", splits->size() + 1}});

    poll_pause();  // a run started paused copies nothing
    feed = std::make_unique<Feed>(loop, store, Feed::Streams{o.legacy_prefix, o.dest_prefix, *splits, o.shard}, spool,
                                  [this] { pump(); });
    tick_timer = loop.call_after(o.flush_interval, [this] { tick(); });
    if (auto w = loop.run_until("the migration to finish", [this] { return finished(); }); !w) stop_fatal(w.error());
    loop.cancel(tick_timer);
    if (hooks.on_progress) hooks.on_progress(progress());

    report.counts.legacy_objects_listed = feed->legacy_listed();
    result.paused_seconds = paused_seconds();
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

Migration::Migration(EventLoop& loop, ObjectStore& store, RowStore& rows, MigrationOptions options, Hooks hooks)
    : impl_(std::make_unique<Impl>(loop, store, rows, std::move(options), std::move(hooks))) {}
Migration::~Migration() = default;
RunResult Migration::run() { return impl_->run(); }
const Report& Migration::report() const { return impl_->report; }

Forecast Migration::forecast() const { return impl_->recording ? impl_->recording->forecast() : Forecast{}; }

}  // namespace assetmv::engine

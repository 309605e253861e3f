#include "engine/audit.hpp"

#include <fmt/format.h>

#include <optional>

#include "engine/join.hpp"
#include "engine/plan.hpp"
#include "engine/spool.hpp"

namespace assetmv::engine {

namespace {

// What one name says about the end state: a legacy object left, a row still
// on a legacy path, a row whose object is missing.
void check_group(const Group& g, const MigrationOptions& o, Report& report) {
  auto& c = report.counts;
  const std::string src_key = o.legacy_prefix + g.name;
  const std::string dst_key = o.dest_prefix + g.name;
  // Kept on purpose: no row left on it, an identical copy younger than the grace.
  if (g.src && g.legacy_rows.empty() && g.dst && o.delete_grace.count() > 0 &&
      compare_objects(*g.src, *g.dst) == Sameness::Same && !grace_elapsed(g.dst, o.delete_grace, o.clock())) {
    ++c.legacy_objects_in_grace;
  } else if (g.src) {
    report.needs_human({"legacy_object_left", src_key, dst_key, g.legacy_rows,
                        g.legacy_rows.empty() ? "object still under the legacy prefix"
                                              : "object still under the legacy prefix, rows still point at it"});
  }
  if (!g.legacy_rows.empty() && !g.src) {
    if (g.dst) {
      report.needs_human({"row_not_migrated", src_key, dst_key, g.legacy_rows,
                          "row still on the legacy path, whose object is missing; the destination exists"});
    } else {
      c.dangling_rows += g.legacy_rows.size();
      report.needs_human(
          {"dangling_row", src_key, dst_key, g.legacy_rows, "row points at an object that exists nowhere"});
    }
  }
  if (!g.dest_rows.empty() && !g.dst) {
    c.rows_missing_object += g.dest_rows.size();
    report.needs_human({"row_missing_object", dst_key, "", g.dest_rows, "row points at a missing object"});
  }
}

}  // namespace

AuditResult audit(EventLoop& loop, ObjectStore& store, RowStore& rows, const MigrationOptions& o, const Hooks& hooks,
                  Report& report) {
  AuditResult result;
  auto& c = report.counts;
  Spool spool;
  const auto splits = read_rows(rows, o.scan, o.legacy_prefix, o.dest_prefix, true, spool, c, hooks.stop_requested);
  if (!splits) {
    result.error = splits.error();
    return result;
  }
  Progress p;
  p.legacy_rows = c.rows_legacy + c.rows_dest;
  auto last = std::chrono::steady_clock::now();
  auto check = [&](const Group& g) {
    ++p.names_done;
    p.rows_done += g.legacy_rows.size() + g.dest_rows.size();
    check_group(g, o, report);
  };

  // The same feed as migrate's: verify takes every group as it comes (it
  // only counts), and a page landing wakes the next pump.
  bool ended = false;
  std::optional<Feed> feed;
  auto pump = [&] {
    if (ended || result.error) return;
    auto state = feed->pump([] { return true; }, check);
    if (!state) {
      result.error = state.error();
    } else if (*state == Feed::State::Ended) {
      ended = true;
    }
    const auto now = std::chrono::steady_clock::now();
    if (hooks.on_progress && now - last > std::chrono::milliseconds(200)) {
      last = now;
      p.objects_listed = feed->legacy_listed() + feed->dest_listed();
      hooks.on_progress(p);
    }
  };
  feed.emplace(loop, store, Feed::Streams{o.legacy_prefix, o.dest_prefix, *splits}, spool, pump);
  pump();
  if (auto w = loop.run_until("the audit's listings",
                              [&] { return ended || result.error.has_value() || hooks.stop_requested(); });
      !w)
    result.error = w.error();
  if (!result.error && !ended) result.error = Error{ErrorKind::Interrupted, "Interrupted", "stopped by a signal"};
  // Let a page still in flight land before the listers go away.
  if (auto w = loop.run_until("the audit's last listing page", [&] { return !feed->listing_in_flight(); });
      !w && !result.error)
    result.error = w.error();
  c.legacy_objects_listed = feed->legacy_listed();
  c.dest_objects_listed = feed->dest_listed();
  result.consistent = !result.error && c.rows_legacy == 0 && c.rows_missing_object == 0 &&
                      c.legacy_objects_listed == c.legacy_objects_in_grace;
  return result;
}

}  // namespace assetmv::engine

#include "engine/audit.hpp"

#include <fmt/format.h>

#include "engine/join.hpp"
#include "engine/lister.hpp"
#include "engine/spool.hpp"

namespace assetmv::engine {

AuditResult audit(EventLoop& loop, s3::Client& s3, const s3::Bucket& source, const s3::Bucket& dest, DbSession& db,
                  const MigrationOptions& o, const Hooks& hooks, Report& report) {
  AuditResult result;
  auto& c = report.counts;
  Spool spool;
  const auto splits = read_rows(db, o.scan, o.legacy_prefix, o.dest_prefix, true, spool, c, hooks.stop_requested);
  if (!splits) {
    result.error = splits.error();
    return result;
  }
  Lister src(s3, source, o.legacy_prefix, nullptr, *splits);
  Lister dst(s3, dest, o.dest_prefix, nullptr, *splits);
  Joiner join(src, dst, spool);
  src.fill();
  dst.fill();
  Progress p;
  p.legacy_rows = c.rows_legacy + c.rows_dest;
  auto last = std::chrono::steady_clock::now();
  for (;;) {
    Group g;
    auto step = join.next(g);
    if (!step) {
      result.error = step.error();
      break;
    }
    if (*step == Joiner::Step::Wait) {
      loop.run_until([&] { return (src.ready() && dst.ready()) || hooks.stop_requested(); });
      if (hooks.stop_requested()) {
        result.error = Error{ErrorKind::Fatal, "Interrupted", "stopped by a signal"};
        break;
      }
      continue;
    }
    if (*step == Joiner::Step::End) break;
    ++p.names_done;
    p.rows_done += g.legacy_rows.size() + g.dest_rows.size();
    const std::string src_key = o.legacy_prefix + g.name;
    const std::string dst_key = o.dest_prefix + g.name;
    if (g.src)
      report.needs_human({"legacy_object_left", src_key, dst_key, g.legacy_rows,
                          g.legacy_rows.empty() ? "object still under the legacy prefix"
                                                : "object still under the legacy prefix, rows still point at it"});
    if (!g.legacy_rows.empty() && !g.src) {
      if (g.dst) {
        report.needs_human({"row_not_migrated", src_key, dst_key, g.legacy_rows,
                            "row still on the legacy path, whose object is missing; the destination exists"});
      } else {
        c.dangling_rows += g.legacy_rows.size();
        report.needs_human({"dangling_row", src_key, dst_key, g.legacy_rows,
                            "row points at an object that exists "
                            "nowhere"});
      }
    }
    if (!g.dest_rows.empty() && !g.dst) {
      c.rows_missing_object += g.dest_rows.size();
      report.needs_human({"row_missing_object", dst_key, "", g.dest_rows, "row points at a missing object"});
    }
    const auto now = std::chrono::steady_clock::now();
    if (hooks.on_progress && now - last > std::chrono::milliseconds(200)) {
      last = now;
      p.objects_listed = src.listed() + dst.listed();
      hooks.on_progress(p);
    }
  }
  // Let a page still in flight land before the listers go away.
  loop.run_until([&] { return s3.idle(); });
  c.legacy_objects_listed = src.listed();
  c.dest_objects_listed = dst.listed();
  result.consistent = !result.error && c.rows_legacy == 0 && c.rows_missing_object == 0 && c.legacy_objects_listed == 0;
  return result;
}

}  // namespace assetmv::engine

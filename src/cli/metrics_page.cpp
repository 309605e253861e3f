#include "cli/metrics_page.hpp"

#include <algorithm>

#include "metrics/exposition.hpp"

namespace assetmv::cli {

namespace {

using metrics::Exposition;

double d(std::uint64_t v) { return static_cast<double>(v); }

// `listed`: the listing's live count; the report's counts get it only at the end.
void objects_and_rows(Exposition& e, const engine::Counts& c, std::uint64_t listed) {
  e.family("assetmv_objects_total", "counter", "Legacy objects settled by this run, by outcome");
  const std::pair<const char*, std::uint64_t> objects[] = {{"copied", c.objects_copied},
                                                           {"already_in_place", c.objects_already_in_place},
                                                           {"orphan_moved", c.orphan_objects_moved},
                                                           {"conflict", c.conflicts},
                                                           {"archived", c.archived_objects},
                                                           {"sse_c", c.sse_c_objects},
                                                           {"failed", c.failures},
                                                           {"deleted", c.legacy_objects_deleted},
                                                           {"kept", c.legacy_objects_kept},
                                                           {"in_grace", c.legacy_objects_in_grace}};
  for (const auto& [outcome, n] : objects) e.sample("assetmv_objects_total", {{"outcome", outcome}}, d(n));
  e.family("assetmv_objects_listed_total", "counter", "Objects listed under the legacy prefix");
  e.sample("assetmv_objects_listed_total", {}, d(listed));

  e.family("assetmv_rows_total", "counter", "Legacy rows settled by this run, by outcome");
  const std::pair<const char*, std::uint64_t> rows[] = {
      {"rewritten", c.rows_rewritten}, {"superseded", c.rows_superseded}, {"dangling", c.dangling_rows}};
  for (const auto& [outcome, n] : rows) e.sample("assetmv_rows_total", {{"outcome", outcome}}, d(n));
  e.family("assetmv_legacy_rows", "gauge", "Rows under the legacy prefix when the run read the table");
  e.sample("assetmv_legacy_rows", {}, d(c.legacy_rows_found));
}

void s3_requests(Exposition& e, const MetricsView& v) {
  e.family("assetmv_s3_requests_total", "counter",
           "S3 requests answered, each attempt, by operation and outcome (ok, throttled, error)");
  if (v.s3 != nullptr) {
    for (const auto& [op, st] : v.s3->by_operation) {
      e.sample("assetmv_s3_requests_total", {{"operation", op}, {"outcome", "ok"}}, d(st.answered_ok));
      e.sample("assetmv_s3_requests_total", {{"operation", op}, {"outcome", "throttled"}}, d(st.throttled));
      e.sample("assetmv_s3_requests_total", {{"operation", op}, {"outcome", "error"}}, d(st.errors));
    }
    e.family("assetmv_s3_retries_total", "counter", "S3 requests sent again after a throttle or an error");
    for (const auto& [op, st] : v.s3->by_operation)
      e.sample("assetmv_s3_retries_total", {{"operation", op}}, d(st.retries));
    e.family("assetmv_s3_operations_failed_total", "counter", "S3 operations given up after their retries");
    for (const auto& [op, st] : v.s3->by_operation)
      e.sample("assetmv_s3_operations_failed_total", {{"operation", op}}, d(st.failed));
    e.family("assetmv_s3_request_duration_seconds", "histogram",
             "Time from sending an S3 request to its answer, each attempt, by operation");
    for (const auto& [op, h] : v.s3->latency)
      e.histogram("assetmv_s3_request_duration_seconds", {{"operation", op}}, h);
  }
  if (v.s3 != nullptr) {
    e.family("assetmv_s3_resigned_total", "counter",
             "S3 requests refused for expired or revoked keys and sent again with fresh ones");
    e.sample("assetmv_s3_resigned_total", {}, d(v.s3->resigned));
    e.family("assetmv_s3_redirected_total", "counter",
             "S3 requests answered from another region and sent again to the bucket's own");
    e.sample("assetmv_s3_redirected_total", {}, d(v.s3->redirected));
  }
  e.family("assetmv_s3_requests_in_flight", "gauge", "S3 requests sent and not yet answered");
  e.sample("assetmv_s3_requests_in_flight", {}, d(v.s3_in_flight));
  e.family("assetmv_s3_rate_limit_per_second", "gauge", "The request-rate cap now in force (0: none)");
  e.sample("assetmv_s3_rate_limit_per_second", {}, v.s3_rate_cap);
  e.family("assetmv_s3_concurrency_window", "gauge",
           "Requests the shared pacer lets be in flight now (shrinks on SlowDown, grows back on success)");
  e.sample("assetmv_s3_concurrency_window", {}, v.s3_window);
}

void database_and_state(Exposition& e, const MetricsView& v) {
  if (v.db_statements != nullptr) {
    e.family("assetmv_db_statement_duration_seconds", "histogram", "Time each database statement took");
    e.histogram("assetmv_db_statement_duration_seconds", {}, *v.db_statements);
  }
  if (v.replica_lag_seconds) {
    e.family("assetmv_db_replica_lag_seconds", "gauge", "The most lagging replica's replay lag, as last read");
    e.sample("assetmv_db_replica_lag_seconds", {}, *v.replica_lag_seconds);
  }
  e.family("assetmv_paused", "gauge", "1 while the run is paused, by why (operator: a control file; replica_lag)");
  for (const char* why : {"operator", "replica_lag"})
    e.sample("assetmv_paused", {{"reason", why}}, v.progress.paused && v.pause_reason == why ? 1 : 0);
  e.family("assetmv_progress_ratio", "gauge", "Legacy rows settled over legacy rows found (0 to 1)");
  const auto& p = v.progress;
  e.sample("assetmv_progress_ratio", {},
           p.legacy_rows > 0 ? d(p.rows_done) / d(p.legacy_rows) : (v.finished ? 1.0 : 0.0));
  if (v.eta_seconds) {
    e.family("assetmv_eta_seconds", "gauge", "Estimated time to the end at the current rate");
    e.sample("assetmv_eta_seconds", {}, *v.eta_seconds);
  }
  e.family("assetmv_needs_human_total", "counter", "Items the report lists for a human");
  e.sample("assetmv_needs_human_total", {}, d(p.needs_human));
  e.family("assetmv_finished", "gauge", "1 once the run has ended and its report is written");
  e.sample("assetmv_finished", {}, v.finished ? 1 : 0);
  e.family("assetmv_start_time_seconds", "gauge", "Unix time the run started");
  e.sample("assetmv_start_time_seconds", {}, v.start_time_seconds);
  e.family("assetmv_build_info", "gauge", "Always 1; the labels say which build and which command");
  e.sample("assetmv_build_info",
           {{"version", v.version}, {"revision", v.commit}, {"command", v.command}, {"shard", v.shard}}, 1);
}

void credentials(Exposition& e, const MetricsView& v) {
  const std::pair<const char*, const credentials::Source*> sides[] = {{"source", v.source_credentials},
                                                                      {"dest", v.dest_credentials}};
  e.family("assetmv_credentials_refreshes_total", "counter",
           "Fetches of new keys after the first, by side and outcome (ok, failed)");
  for (const auto& [side, src] : sides) {
    if (src == nullptr) continue;
    e.sample("assetmv_credentials_refreshes_total", {{"side", side}, {"outcome", "ok"}}, d(src->stats().refreshes));
    e.sample("assetmv_credentials_refreshes_total", {{"side", side}, {"outcome", "failed"}}, d(src->stats().failures));
  }
  e.family("assetmv_credentials_expiry_timestamp_seconds", "gauge",
           "Unix time the side's current keys expire (absent: they do not)");
  for (const auto& [side, src] : sides) {
    if (src == nullptr || !src->stats().expires) continue;
    e.sample("assetmv_credentials_expiry_timestamp_seconds", {{"side", side}},
             std::chrono::duration<double>(src->stats().expires->time_since_epoch()).count());
  }
}

}  // namespace

std::string render_metrics(const MetricsView& v) {
  Exposition e;
  // A long listing is progress too (AssetmvStalled reads it): the count as
  // the listing goes, not only once the run has ended.
  if (v.counts != nullptr)
    objects_and_rows(e, *v.counts, std::max(v.counts->legacy_objects_listed, v.progress.objects_listed));
  s3_requests(e, v);
  credentials(e, v);
  database_and_state(e, v);
  return e.text();
}

}  // namespace assetmv::cli

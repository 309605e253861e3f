// What /metrics shows during a run: the run's counts, its S3 requests and
// their latency, the pacer, the database's statement latency, replica lag,
// pause and progress, in Prometheus' conventions (base units, `_total`
// counters, a bounded set of label values: never a key or an id).
// docs/operations.md lists the names and the PromQL to watch them.
#pragma once

#include <optional>
#include <string>

#include "core/histogram.hpp"
#include "engine/migration.hpp"
#include "engine/report.hpp"
#include "s3/client.hpp"

namespace assetmv::cli {

struct MetricsView {
  std::string command;  // migrate or verify
  std::string version;
  std::string commit;
  std::string shard = "0/1";      // K/N: each worker of a sharded run is one target
  double start_time_seconds = 0;  // Unix time the run started
  const engine::Counts* counts = nullptr;
  engine::Progress progress;
  const s3::ClientStats* s3 = nullptr;  // the run's requests, preflight included
  std::size_t s3_in_flight = 0;
  double s3_rate_cap = 0;  // requests per second, 0: none
  double s3_window = 0;    // the pacer's concurrency window
  const Histogram* db_statements = nullptr;
  std::optional<double> replica_lag_seconds;  // the worst replica's, when it is watched
  std::string pause_reason;                   // operator or replica_lag, when paused
  std::optional<double> eta_seconds;
  bool finished = false;
  // Each side's credentials (the same source twice when they share one).
  const credentials::Source* source_credentials = nullptr;
  const credentials::Source* dest_credentials = nullptr;
};

// The page, in the text exposition format. Pure.
std::string render_metrics(const MetricsView& v);

}  // namespace assetmv::cli

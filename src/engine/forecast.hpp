// What a real run would send, counted by a dry run (--dry-run), and what it
// would cost and take. The dry run lists, reads the table and HEADs what it
// must compare for real, so those requests are the real run's (the caller
// adds them from the client's counts); the writes are counted as the stages
// ask for them, by the dry run's RecordingStore (dry_run.hpp), with the
// part sizes and batches a real run would use (docs/operations.md).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace assetmv::engine {

struct Forecast {
  std::map<std::string, std::uint64_t> requests;  // by S3 operation
  std::uint64_t deleted_keys = 0;                 // each a write on the legacy prefix

  void add(const std::string& operation, std::uint64_t n = 1) { requests[operation] += n; }
};

// List prices in USD per 1,000 requests (S3 Standard, us-east-1): class A
// is PUT, COPY, POST and LIST; class B is GET and HEAD; DELETE is free.
struct Prices {
  double class_a_per_1000 = 0.005;
  double class_b_per_1000 = 0.0004;
};

struct Rates {
  // Writes per second S3 sustains on one prefix (PUT/COPY/POST/DELETE): the
  // copies land on the destination prefix, the deletes on the legacy one.
  double prefix_writes_per_s = 3500;
  double max_rate = 0;  // --max-rate, if set: all requests
};

// Requests by class, the cost at `prices`, and the time at `rates` (the
// slower of the two prefixes' write limits and the request-rate cap). Pure.
nlohmann::json price_forecast(const Forecast& f, const Prices& prices, const Rates& rates);

}  // namespace assetmv::engine

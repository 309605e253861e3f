// Options shared by every subcommand (where the objects and rows are, how to
// reach them) and their resolution into buckets, clients and a table
// reference, following AWS and libpq conventions.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "core/loop.hpp"
#include "db/table.hpp"
#include "http/http.hpp"
#include "s3/client.hpp"
#include "s3/location.hpp"

namespace assetmv::cli {

// Exit codes: the contract scripts, schedulers and runbooks rely on. 2 is
// permanent (the same command fails the same way until a human fixes it: a
// scheduler should not retry it); 3 and 4 are worth running again as they are.
enum ExitCode : int {
  kExitOk = 0,           // everything done
  kExitNeedsHuman = 1,   // finished; some items need a human (listed in the report)
  kExitUsage = 2,        // usage, configuration or permission error found before anything changed
  kExitStopped = 3,      // stopped by an unrecoverable error or a signal; run again to resume
  kExitUnavailable = 4,  // a service (database, store) unreachable at the start; nothing changed: run again
};

// The exit code of a refusal before anything changed: 4 when it was a
// service that could not be reached or answered with a transient error
// after its retries (a database restarting, a store in an outage), 2 for
// everything a rerun cannot cure.
int refusal_exit_code(const Error& e);

// The exit codes as `--help` ends with them.
extern const char* const kExitCodesHelp;

struct CommonOptions {
  std::string source;  // s3://BUCKET/PREFIX
  std::string dest;
  std::string endpoint;
  std::string source_endpoint;
  std::string dest_endpoint;
  std::string source_profile;  // AWS profile for the source bucket only (its keys win over the environment's)
  std::string dest_profile;
  bool path_style = false;
  std::string region;  // both buckets' (host and signature)
  std::string source_region;
  std::string dest_region;
  std::string db;  // libpq conninfo or postgres:// URI; empty: PG* environment
  std::string table = "avatars";
  std::string id_column = "id";
  std::string path_column = "path";
  int concurrency = 256;
  double max_rate = 0;       // S3 requests per second per client; 0: no cap
  int stall_timeout_s = 30;  // a request that moves no byte for this long fails (and is retried)
  bool insecure_tls = false;
  std::string ca_file;
  std::string log_format = "auto";
  bool verbose = false;
};

void add_common_options(CLI::App& app, CommonOptions& o);

// Everything a command needs, built once from the options. The loop and the
// clients come first: the buckets' credential sources, destroyed before
// them, cancel their refresh timers on a loop that is still there.
struct Context {
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<http::Client> http;
  std::unique_ptr<s3::Client> s3;
  s3::Location source;
  s3::Location dest;
  s3::Bucket source_bucket;
  s3::Bucket dest_bucket;
  db::TableRef table;
  std::string credentials_source;  // where the keys came from, both sides ("source: ..., dest: ..." when they differ)
};

// Sets up logging as the options ask.
void init_logging(const CommonOptions& o);
// Parses locations, resolves AWS settings and endpoints, builds the clients,
// and fetches each side's first credentials (a role assumed, a token
// exchanged, a process run). Errors here are configuration errors (exit 2),
// each one line naming what failed.
Result<Context> make_context(const CommonOptions& o);

}  // namespace assetmv::cli

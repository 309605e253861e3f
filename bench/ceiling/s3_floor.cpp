// s3_floor: the floor under assetmv's CPU per object, measured with its own
// stack and nothing else. It lists SOURCE and copies every object to DEST
// through the same s3::Client, http::Client and event loop that `assetmv
// migrate` uses, with the same requests (ListObjectsV2 pages, a CopyObject
// conditional on the listed ETag and on the destination being absent), but
// with no rows, no journal, no verification beyond the copy's answer, and
// no delete. What `migrate` spends above this figure is the engine's and the
// database's; what this figure itself is, is libcurl's, the kernel's, the
// allocator's and the S3 layer's (signing included).
//
// Usage: s3_floor s3://BUCKET/PREFIX s3://BUCKET/PREFIX [--window N]
// Endpoint and credentials come from the environment as for assetmv
// (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...). Prints one line of JSON.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <deque>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/loop.hpp"
#include "http/http.hpp"
#include "process_cpu.hpp"
#include "s3/aws_config.hpp"
#include "s3/client.hpp"
#include "s3/location.hpp"

using namespace assetmv;

namespace {

constexpr int kDefaultWindow = 100;  // ~3,300 copies/s at 30 ms: the rate `migrate` settles at under AWS's limits

int fail(const std::string& why) {
  std::fprintf(stderr, "s3_floor: %s\n", why.c_str());
  return 2;
}

struct Run {
  EventLoop& loop;
  s3::Client& s3;
  s3::Bucket source;
  s3::Bucket dest;
  std::string source_prefix;
  std::string dest_prefix;
  int window = kDefaultWindow;

  std::deque<s3::ObjectEntry> pending;  // listed, not yet copied
  std::string token;
  bool listing = false;
  bool listed_all = false;
  int in_flight = 0;
  std::uint64_t copied = 0;
  std::uint64_t failed = 0;
  std::string error;  // a listing that failed: the run stops

  void list_next() {
    if (listing || listed_all) return;
    listing = true;
    s3::ListParams p;
    p.prefix = source_prefix;
    p.continuation_token = token;
    s3.list_objects_v2(source, p, [this](Result<s3::ListPage> page) {
      listing = false;
      if (!page) {
        error = "listing failed: " + page.error().message;
        loop.stop();
        return;
      }
      for (auto& o : page->objects) pending.push_back(std::move(o));
      token = page->next_continuation_token;
      listed_all = !page->truncated;
      pump();
    });
  }

  void pump() {
    while (in_flight < window && !pending.empty()) {
      s3::ObjectEntry o = std::move(pending.front());
      pending.pop_front();
      s3::CopyParams p;
      p.source_bucket = source.name;
      p.dest_key = dest_prefix + o.key.substr(source_prefix.size());
      p.source_key = std::move(o.key);
      p.if_match = std::move(o.etag);
      p.if_none_match = true;
      ++in_flight;
      s3.copy_object(dest, std::move(p), [this](const Result<std::string>& etag) {
        --in_flight;
        ++(etag ? copied : failed);
        pump();
      });
    }
    // Keep a page ahead, as the engine's listers do.
    if (pending.size() < static_cast<std::size_t>(s3::kMaxListKeys)) list_next();
  }

  bool done() const { return listed_all && !listing && pending.empty() && in_flight == 0; }
};

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.size() < 2) return fail("usage: s3_floor s3://BUCKET/PREFIX s3://BUCKET/PREFIX [--window N]");
  const auto src = s3::Location::parse(args[0]);
  const auto dst = s3::Location::parse(args[1]);
  if (!src || !dst) return fail("bad location");
  int window = kDefaultWindow;
  for (std::size_t i = 2; i + 1 < args.size(); i += 2) {
    const auto v = args[i + 1];
    if (args[i] != "--window" || std::from_chars(v.data(), v.data() + v.size(), window).ec != std::errc() || window < 1)
      return fail("bad option " + std::string(args[i]));
  }

  const auto aws = s3::resolve_aws_settings(s3::process_env());
  if (!aws) return fail(aws.error().message);
  auto ep = s3::resolve_endpoint({.path_style = true}, *aws);
  if (!ep) return fail(ep.error().message);
  if (aws->credentials.refreshable()) return fail("the floor signs with static keys (AWS_ACCESS_KEY_ID) only");
  const auto keys = credentials::Source::fixed(aws->credentials.keys);

  EventLoop loop;
  loop.set_coalescing(EventLoop::kCoalesceWindow);  // as `migrate` runs its loop
  http::ClientOptions hopt;
  hopt.max_connections = window;
  http::Client http(loop, hopt);
  s3::ClientOptions sopt;
  sopt.pacer.initial_window = window;
  sopt.pacer.max_window = window;
  s3::Client s3c(loop, http, sopt);

  Run run{loop,        s3c,   s3::bucket_on(*ep, keys, src->bucket), s3::bucket_on(*ep, keys, dst->bucket), src->prefix,
          dst->prefix, window};
  const auto start = std::chrono::steady_clock::now();
  run.list_next();
  if (auto r = loop.run_until("the floor's copies", [&] { return run.done() || !run.error.empty(); }); !r)
    return fail(r.error().message);
  if (!run.error.empty()) return fail(run.error);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = process_cpu_seconds();
  const auto n = static_cast<double>(run.copied);
  std::printf(
      "{\"copied\":%llu,\"failed\":%llu,\"wall_s\":%.2f,\"objects_per_s\":%.0f,\"cpu_s\":%.3f,\"cpu_us_per_object\":%."
      "1f}\n",
      static_cast<unsigned long long>(run.copied), static_cast<unsigned long long>(run.failed), wall, n / wall, cpu,
      n > 0 ? 1e6 * cpu / n : 0.0);
  return run.failed == 0 ? 0 : 1;
}

#include "cli/common.hpp"

#include <fmt/format.h>

#include "core/log.hpp"
#include "core/utc_time.hpp"
#include "s3/aws_config.hpp"

namespace assetmv::cli {

int refusal_exit_code(const Error& e) {
  return e.kind == ErrorKind::Retryable || e.kind == ErrorKind::Throttled ? kExitUnavailable : kExitUsage;
}

const char* const kExitCodesHelp =
    "Exit codes:\n"
    "  0  done (verify: consistent)\n"
    "  1  finished; some items need a human (the report's needs_human lists them)\n"
    "  2  refused before changing anything, permanently: usage, configuration, credentials, a missing grant;\n"
    "     fix it before running again\n"
    "  3  stopped (a signal, an outage, a lost permission): run the same command again to resume\n"
    "  4  a service (the database, the store) could not be reached at the start; nothing changed: run the\n"
    "     same command again later";

void add_common_options(CLI::App& app, CommonOptions& o) {
  app.add_option("--source", o.source, "Legacy location, s3://BUCKET/PREFIX")->required();
  app.add_option("--dest", o.dest, "Production location, s3://BUCKET/PREFIX")->required();
  app.add_option(
      "--endpoint", o.endpoint,
      "S3 endpoint URL for both buckets (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile, or AWS)");
  app.add_option("--source-endpoint", o.source_endpoint, "S3 endpoint URL of the source bucket only");
  app.add_option("--dest-endpoint", o.dest_endpoint, "S3 endpoint URL of the destination bucket only");
  app.add_option("--source-profile", o.source_profile,
                 "AWS profile (~/.aws/credentials and config) for the source bucket only: its keys, region and "
                 "endpoint_url, for a source on another provider; its keys win over AWS_ACCESS_KEY_ID");
  app.add_option("--dest-profile", o.dest_profile, "AWS profile for the destination bucket only (as --source-profile)");
  app.add_flag("--path-style", o.path_style,
               "Path-style addressing (host/bucket/key); automatic for IP and localhost endpoints");
  app.add_option("--region", o.region,
                 "Region of both buckets: where requests go on AWS and what they are signed for (default: "
                 "AWS_REGION, AWS_DEFAULT_REGION, the profile, us-east-1; a bucket found elsewhere is followed)");
  app.add_option("--source-region", o.source_region, "Region of the source bucket only (as --region)");
  app.add_option("--dest-region", o.dest_region, "Region of the destination bucket only (as --region)");
  app.add_option("--db", o.db, "PostgreSQL conninfo or postgres:// URI (default: libpq's PG* variables and ~/.pgpass)");
  app.add_option("--table", o.table, "Table holding the paths; may be schema-qualified")->capture_default_str();
  app.add_option("--id-column", o.id_column, "Integer primary key column")->capture_default_str();
  app.add_option("--path-column", o.path_column, "Column holding the object key")->capture_default_str();
  app.add_option("--concurrency", o.concurrency, "Most S3 requests in flight at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--max-rate", o.max_rate,
                 "Most S3 requests started per second (0: no cap, the store's SlowDown answers pace the run)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--stall-timeout", o.stall_timeout_s,
                 "Seconds without a byte after which an S3 request or a database statement is abandoned and retried "
                 "(a dead peer or a blackhole)")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_flag("--insecure-tls", o.insecure_tls, "Do not verify TLS certificates (logged loudly; never in production)");
  app.add_option("--ca-file", o.ca_file,
                 "PEM bundle of CA certificates to trust instead of the system's (default: AWS_CA_BUNDLE, the "
                 "profile's ca_bundle)");
  app.add_option("--log-format", o.log_format, "auto (text on a terminal, else json), text or json")
      ->check(CLI::IsMember({"auto", "text", "json"}))
      ->capture_default_str();
  app.add_flag("-v,--verbose", o.verbose, "Debug logging");
}

void init_logging(const CommonOptions& o) {
  const auto format = o.log_format == "json"   ? logging::Format::Json
                      : o.log_format == "text" ? logging::Format::Text
                                               : logging::auto_format();
  logging::init(format, o.verbose ? logging::Level::Debug : logging::Level::Info);
}

namespace {

// One credential source per distinct chain: two sides that resolve alike
// (the usual case) share one, so one refresh serves both.
struct Sources {
  std::vector<std::pair<std::string, std::shared_ptr<credentials::Source>>> made;

  Result<std::shared_ptr<credentials::Source>> get(const credentials::Spec& spec, Context& c) {
    const std::string id = spec.describe();
    for (const auto& [known, source] : made)
      if (known == id) return source;
    std::shared_ptr<credentials::Source> source;
    if (!spec.refreshable()) {
      source = credentials::Source::fixed(spec.keys, id);
    } else {
      source = std::make_shared<credentials::Source>(
          *c.loop, credentials::make_provider(std::make_shared<const credentials::Spec>(spec), *c.loop, *c.http), id);
      if (auto r = source->start(); !r) return tl::unexpected(r.error());
      logging::info("credentials.ready",
                    fmt::format("credentials from {}{}", id,
                                source->stats().expires
                                    ? ", valid until " + format_utc_time(*source->stats().expires) + ", refreshed ahead"
                                    : ""),
                    {{"source", id}, {"access_key_id", source->stats().access_key_id}});
    }
    made.emplace_back(id, source);
    return source;
  }
};

// The CA bundle to trust: --ca-file, else AWS_CA_BUNDLE or a profile's
// ca_bundle (one: curl takes one file).
Result<std::string> ca_bundle(const CommonOptions& o, const s3::AwsSettings& src, const s3::AwsSettings& dst) {
  if (!o.ca_file.empty()) return o.ca_file;
  if (src.ca_bundle && dst.ca_bundle && *src.ca_bundle != *dst.ca_bundle)
    return fail(ErrorKind::Fatal, "TwoCaBundles",
                fmt::format("the two sides name different CA bundles ({} and {}): give one --ca-file holding both",
                            *src.ca_bundle, *dst.ca_bundle));
  return src.ca_bundle.value_or(dst.ca_bundle.value_or(""));
}

}  // namespace

Result<Context> make_context(const CommonOptions& o) {
  Context c;
  auto src = s3::Location::parse(o.source);
  if (!src) return tl::unexpected(src.error());
  auto dst = s3::Location::parse(o.dest);
  if (!dst) return tl::unexpected(dst.error());
  c.source = *src;
  c.dest = *dst;

  // Each side's settings: its own profile when one is named, else the
  // environment's chain. A profile's own endpoint_url is that side's, so
  // --endpoint (both sides) does not override it; --source/--dest-endpoint do.
  const auto profile_of = [](const std::string& p) { return p.empty() ? std::nullopt : std::optional(p); };
  auto src_aws = s3::resolve_aws_settings(s3::process_env(), profile_of(o.source_profile));
  if (!src_aws) return tl::unexpected(src_aws.error());
  auto dst_aws = s3::resolve_aws_settings(s3::process_env(), profile_of(o.dest_profile));
  if (!dst_aws) return tl::unexpected(dst_aws.error());

  auto src_ep = s3::resolve_endpoint(
      {o.source_endpoint, o.endpoint, o.source_region, o.region, !o.source_profile.empty(), o.path_style}, *src_aws);
  if (!src_ep) return tl::unexpected(src_ep.error());
  auto dst_ep = s3::resolve_endpoint(
      {o.dest_endpoint, o.endpoint, o.dest_region, o.region, !o.dest_profile.empty(), o.path_style}, *dst_aws);
  if (!dst_ep) return tl::unexpected(dst_ep.error());

  auto table = db::TableRef::parse(o.table, o.id_column, o.path_column);
  if (!table) return tl::unexpected(table.error());
  c.table = *table;
  auto ca = ca_bundle(o, *src_aws, *dst_aws);
  if (!ca) return tl::unexpected(ca.error());

  if (o.insecure_tls)
    logging::warn("tls.insecure", "TLS certificate verification is OFF: anyone on the path can read and alter traffic");

  http::ClientOptions hopt;
  hopt.max_connections = o.concurrency;
  hopt.verify_tls = !o.insecure_tls;
  hopt.ca_file = *ca;
  hopt.low_speed_time = std::chrono::seconds(o.stall_timeout_s);
  c.loop = std::make_unique<EventLoop>();
  c.loop->set_coalescing(EventLoop::kCoalesceWindow);
  c.http = std::make_unique<http::Client>(*c.loop, hopt);
  s3::ClientOptions sopt;
  sopt.pacer.initial_window = o.concurrency;
  sopt.pacer.max_window = o.concurrency;
  sopt.pacer.max_rate = o.max_rate;
  c.s3 = std::make_unique<s3::Client>(*c.loop, *c.http, sopt);

  Sources sources;
  auto src_keys = sources.get(src_aws->credentials, c);
  if (!src_keys) return tl::unexpected(src_keys.error());
  auto dst_keys = sources.get(dst_aws->credentials, c);
  if (!dst_keys) return tl::unexpected(dst_keys.error());
  const auto& a = (*src_keys)->description();
  const auto& b = (*dst_keys)->description();
  c.credentials_source = a == b ? a : fmt::format("source: {}; dest: {}", a, b);
  c.source_bucket = s3::bucket_on(*src_ep, *src_keys, c.source.bucket);
  c.dest_bucket = s3::bucket_on(*dst_ep, *dst_keys, c.dest.bucket);
  return c;
}

}  // namespace assetmv::cli

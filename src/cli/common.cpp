#include "cli/common.hpp"

#include <fmt/format.h>

#include "core/log.hpp"
#include "s3/aws_config.hpp"

namespace assetmv::cli {

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
                 "Region for signing (default: AWS_REGION, AWS_DEFAULT_REGION, the profile, us-east-1)");
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
  app.add_option("--ca-file", o.ca_file, "PEM bundle of CA certificates to trust instead of the system's");
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

Result<s3::Endpoint> endpoint_for(const std::string& specific, const std::string& common, const s3::AwsSettings& aws,
                                  const CommonOptions& o) {
  s3::Endpoint ep;
  const std::string& url = !specific.empty() ? specific : !common.empty() ? common : aws.endpoint_url.value_or("");
  if (url.empty()) {
    ep = s3::Endpoint::aws(aws.region);
  } else {
    auto parsed = s3::Endpoint::parse(url);
    if (!parsed) return tl::unexpected(parsed.error());
    ep = *parsed;
  }
  ep.region = o.region.empty() ? aws.region : o.region;
  if (o.path_style || aws.addressing_style == "path") ep.path_style = true;
  if (aws.addressing_style == "virtual" && !o.path_style) ep.path_style = false;
  return ep;
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
  c.credentials_source =
      src_aws->credentials_source == dst_aws->credentials_source
          ? src_aws->credentials_source
          : fmt::format("source: {}; dest: {}", src_aws->credentials_source, dst_aws->credentials_source);

  auto src_ep = endpoint_for(o.source_endpoint, o.source_profile.empty() ? o.endpoint : "", *src_aws, o);
  if (!src_ep) return tl::unexpected(src_ep.error());
  auto dst_ep = endpoint_for(o.dest_endpoint, o.dest_profile.empty() ? o.endpoint : "", *dst_aws, o);
  if (!dst_ep) return tl::unexpected(dst_ep.error());
  c.source_bucket = s3::bucket_on(*src_ep, src_aws->credentials, c.source.bucket);
  c.dest_bucket = s3::bucket_on(*dst_ep, dst_aws->credentials, c.dest.bucket);

  auto table = db::TableRef::parse(o.table, o.id_column, o.path_column);
  if (!table) return tl::unexpected(table.error());
  c.table = *table;

  if (o.insecure_tls)
    logging::warn("tls.insecure", "TLS certificate verification is OFF: anyone on the path can read and alter traffic");

  http::ClientOptions hopt;
  hopt.max_connections = o.concurrency;
  hopt.verify_tls = !o.insecure_tls;
  hopt.ca_file = o.ca_file;
  hopt.low_speed_time = std::chrono::seconds(o.stall_timeout_s);
  c.loop = std::make_unique<EventLoop>();
  c.loop->set_coalescing(EventLoop::kCoalesceWindow);
  c.http = std::make_unique<http::Client>(*c.loop, hopt);
  s3::ClientOptions sopt;
  sopt.pacer.initial_window = o.concurrency;
  sopt.pacer.max_window = o.concurrency;
  sopt.pacer.max_rate = o.max_rate;
  c.s3 = std::make_unique<s3::Client>(*c.loop, *c.http, sopt);
  return c;
}

}  // namespace assetmv::cli

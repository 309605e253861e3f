#include "s3/client.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <unordered_map>

#include "core/backoff.hpp"
#include "core/log.hpp"

namespace assetmv::s3 {

namespace {

// A request refused for its credentials is signed again with fresh ones at
// most this often; a refusal after that is the keys' lack of a permission.
constexpr int kMaxRefusals = 2;

bool success(const http::Response& r) { return r.transport_ok() && r.status >= 200 && r.status < 300; }

// What a message names: the object written, and for a copy the one read (a
// NoSuchKey there is about the source).
std::string target_of(const S3Request& req) {
  auto target = req.key.empty() ? fmt::format("s3://{}", req.bucket) : fmt::format("s3://{}/{}", req.bucket, req.key);
  return req.source.empty() ? target : fmt::format("{} from {}", target, req.source);
}

// A HEAD has no body, so its status alone names the error.
std::string code_for_status(int status) {
  switch (status) {
    case 301:
      return "PermanentRedirect";
    case 400:
      return "BadRequest";
    case 403:
      return "AccessDenied";
    case 404:
      return "NotFound";
    case 412:
      return "PreconditionFailed";
    case 500:
      return "InternalError";
    case 503:
      return "SlowDown";
    default:
      return fmt::format("HTTP{}", status);
  }
}

std::string key_id_of(const Bucket& b) { return b.credentials ? b.credentials->stats().access_key_id : std::string(); }

// What an SRE should check, for the errors that are about configuration.
std::string hint(const std::string& code, const Bucket& b) {
  if (code == "SignatureDoesNotMatch")
    return fmt::format("the secret key does not match access key '{}' (check AWS_SECRET_ACCESS_KEY or the profile)",
                       key_id_of(b));
  if (code == "InvalidAccessKeyId")
    return fmt::format("access key '{}' is unknown to {}", key_id_of(b), b.endpoint.authority());
  if (code == "RequestTimeTooSkewed") return "this machine's clock is too far from the server's; fix NTP";
  if (code == "NoSuchBucket") return fmt::format("bucket '{}' does not exist on {}", b.name, b.endpoint.authority());
  if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed")
    return fmt::format("bucket '{}' is in another region than '{}' (set --region, --source-region or --dest-region)",
                       b.name, b.endpoint.region);
  return {};
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

ObjectInfo info_from_headers(const http::Response& r) {
  ObjectInfo info;
  info.size = parse_u64(r.header("content-length").value_or("0")).value_or(0);
  info.etag = unquote_etag(r.header("etag").value_or(""));
  info.content_type = std::string(r.header("content-type").value_or(""));
  info.last_modified = std::string(r.header("last-modified").value_or(""));
  info.source_etag = unquote_etag(r.header(kSourceEtagHeader).value_or(""));
  info.replayable = replayable_headers(r.headers);
  if (auto n = r.header("x-amz-tagging-count")) info.tag_count = parse_u64(*n);
  info.restore = std::string(r.header("x-amz-restore").value_or(""));
  info.version_id = std::string(r.header("x-amz-version-id").value_or(""));
  info.encryption = encryption_headers(r.headers);
  return info;
}

}  // namespace

Capabilities known_capabilities(const Endpoint& ep) {
  // Cloud Storage's XML API (storage.googleapis.com): the basics of S3, no
  // POST ?delete, no ?tagging, no x-amz-copy-source on a part.
  if (ep.host == "storage.googleapis.com" || ep.host.ends_with(".storage.googleapis.com")) return {false, false, false};
  return {};
}

std::optional<std::string> region_from_answer(const http::Response& resp) {
  if (!resp.transport_ok()) return std::nullopt;
  auto body = parse_error_body(resp.body);
  const std::string code = body ? body->code : std::string();
  const bool wrong_region = code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" ||
                            code == "IllegalLocationConstraintException" ||
                            (code.empty() && (resp.status == 301 || resp.status == 400));
  if (!wrong_region) return std::nullopt;
  if (auto h = resp.header("x-amz-bucket-region"); h && !h->empty()) return std::string(*h);
  if (body && !body->region.empty()) return body->region;
  return std::nullopt;
}

bool credentials_refused(std::string_view code) {
  return code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired" ||
         code == "InvalidAccessKeyId";
}

std::optional<std::chrono::milliseconds> retry_after(std::string_view value) {
  unsigned seconds = 0;
  const auto* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, seconds);
  if (value.empty() || ec != std::errc() || ptr != end) return std::nullopt;  // absent, or an HTTP date
  return std::chrono::milliseconds(std::min<std::uint64_t>(seconds, kMaxRetryAfter.count()) * 1000);
}

namespace {
// The ids a store gives an exchange, from its error body or else its headers.
void take_request_ids(Error& e, const http::Response& resp) {
  if (e.request_id.empty()) e.request_id = resp.header("x-amz-request-id").value_or("");
  if (e.host_id.empty()) e.host_id = resp.header("x-amz-id-2").value_or("");
}
}  // namespace

Error error_from_response(const http::Response& resp, const S3Request& req, const Bucket& bucket) {
  Error e;
  if (!resp.transport_ok()) {
    e.kind = classify_http(resp.curl_code, 0, "");
    e.code = fmt::format("curl{}", resp.curl_code);
    e.message =
        fmt::format("{} {} via {}: {}", req.operation, target_of(req), bucket.endpoint.authority(), resp.curl_error);
    return e;
  }
  auto body = parse_error_body(resp.body);
  e.http_status = resp.status;
  e.code = body && !body->code.empty() ? body->code : code_for_status(resp.status);
  e.kind = classify_http(0, resp.status, e.code);
  std::string detail = body && !body->message.empty() ? body->message : std::string();
  if (auto h = hint(e.code, bucket); !h.empty()) detail = detail.empty() ? h : detail + "; " + h;
  e.message = fmt::format("{} {}{}{}", req.operation, target_of(req), detail.empty() ? "" : ": ", detail);
  if (body) {
    e.request_id = body->request_id;
    e.host_id = body->host_id;
  }
  take_request_ids(e, resp);
  return e;
}

struct Client::Op {
  std::shared_ptr<const Bucket> bucket;
  S3Request request;
  std::chrono::milliseconds timeout{0};
  Pacer::TimePoint sent{};  // the current attempt's
  int failures = 0;
  std::string signed_with;  // the access key id of the current attempt
  int refusals = 0;         // attempts refused for their credentials
  bool redirected = false;  // sent again once to the bucket's own region
  // Delivers the result and returns nullopt, or returns the Error to retry or report.
  std::function<std::optional<Error>(http::Response&)> interpret;
  std::function<void(Error)> give_up;
};

struct Client::Impl {
  EventLoop& loop;
  http::Client& http;
  ClientOptions opt;
  Pacer pacer;
  // Operations waiting out a retry's backoff; stop_retrying() gives them up.
  Backoff backoff;
  std::deque<std::unique_ptr<Op>> queue;
  std::size_t in_flight = 0;
  bool held = false;  // set_held()
  EventLoop::TimerId wake_timer = 0;
  bool wake_armed = false;
  ClientStats stats;
  // One shared copy of each bucket operations were given: an operation owns
  // its bucket without a copy per request. A run uses two or three.
  std::vector<std::shared_ptr<const Bucket>> buckets;
  // Operations waiting for their credentials to sign again, by source.
  std::unordered_map<credentials::Source*, std::deque<std::unique_ptr<Op>>> parked;
  std::size_t parked_count = 0;
  // Buckets found in another region: each request for the first goes to the second.
  std::vector<std::pair<std::shared_ptr<const Bucket>, std::shared_ptr<const Bucket>>> moved;
  std::map<std::string, std::string> learned_regions;
  // What each store (by endpoint authority) turned out to lack.
  std::map<std::string, Capabilities> lacking;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);  // for a Source's callback after our end

  const Bucket& addressed(const std::shared_ptr<const Bucket>& b) const {
    for (const auto& [from, to] : moved)
      if (from == b || *from == *b) return *to;
    return *b;
  }

  std::shared_ptr<const Bucket> intern(const Bucket& b) {
    for (const auto& known : buckets)
      if (*known == b) return known;
    constexpr std::size_t kMaxInterned = 16;  // a tool uses a few; beyond that, forget the oldest
    if (buckets.size() >= kMaxInterned) buckets.erase(buckets.begin());
    return buckets.emplace_back(std::make_shared<const Bucket>(b));
  }

  Impl(EventLoop& l, http::Client& h, ClientOptions o)
      : loop(l), http(h), opt(o), pacer(o.pacer), backoff(l, o.retry) {}
  ~Impl() {
    *alive = false;
    if (wake_armed) loop.cancel(wake_timer);
  }
};

Client::Client(EventLoop& loop, http::Client& http, ClientOptions options)
    : impl_(std::make_unique<Impl>(loop, http, options)) {}
Client::~Client() = default;

std::size_t Client::queued() const { return impl_->queue.size() + impl_->backoff.waiting() + impl_->parked_count; }

void Client::stop_retrying(const std::string& why) {
  auto& im = *impl_;
  im.held = false;       // what is queued is given up below; what comes after must go out
  im.backoff.stop(why);  // each op waiting out a backoff is given up, as below
  // Moved out first: a give_up callback may submit new work.
  auto queued = std::move(im.queue);
  im.queue.clear();
  auto parked = std::move(im.parked);
  im.parked.clear();
  im.parked_count = 0;
  std::vector<std::unique_ptr<Op>> ops;
  for (auto& op : queued) ops.push_back(std::move(op));
  for (auto& [source, list] : parked)
    for (auto& op : list) ops.push_back(std::move(op));
  for (auto& op : ops) not_sent(std::move(op), why);
}

void Client::not_sent(std::unique_ptr<Op> op, const std::string& why) {
  auto message = fmt::format("{} {}: not sent: {}", op->request.operation, target_of(op->request), why);
  interrupt(std::move(op), std::move(message));
}
void Client::interrupt(std::unique_ptr<Op> op, std::string message) {
  // The Op goes first: its callback may submit new work.
  auto give_up = std::move(op->give_up);
  op.reset();
  give_up(Error{ErrorKind::Interrupted, "Interrupted", std::move(message)});
}

std::size_t Client::in_flight() const { return impl_->in_flight; }
const ClientStats& Client::stats() const { return impl_->stats; }

namespace {
OpStats minus(const OpStats& a, const OpStats& b) {
  return {a.requests - b.requests, a.retries - b.retries,         a.throttled - b.throttled,
          a.failed - b.failed,     a.answered_ok - b.answered_ok, a.errors - b.errors};
}
}  // namespace

ClientStats stats_since(const ClientStats& now, const ClientStats& before) {
  ClientStats out;
  for (const auto& [op, st] : now.by_operation) {
    auto it = before.by_operation.find(op);
    const OpStats d = it == before.by_operation.end() ? st : minus(st, it->second);
    if (d.requests > 0) out.by_operation[op] = d;
  }
  out.total = minus(now.total, before.total);
  out.resigned = now.resigned - before.resigned;
  out.redirected = now.redirected - before.redirected;
  out.latency = now.latency;
  return out;
}

Pacer& Client::pacer() { return impl_->pacer; }

template <class T>
void Client::run(const Bucket& b, S3Request req, std::function<Result<T>(http::Response&)> parse, Callback<T> cb,
                 std::chrono::milliseconds timeout) {
  auto op = std::make_unique<Op>();
  op->bucket = impl_->intern(b);
  op->request = std::move(req);
  op->timeout = timeout;
  auto shared_cb = std::make_shared<Callback<T>>(std::move(cb));
  const S3Request* request = &op->request;
  const Bucket* bucket = op->bucket.get();  // owned by the Op, which outlives every call of interpret
  op->interpret = [shared_cb, parse = std::move(parse), request, bucket](http::Response& resp) -> std::optional<Error> {
    if (!success(resp)) return error_from_response(resp, *request, *bucket);
    auto value = parse(resp);
    if (!value) {
      Error e = std::move(value).error();
      e.message = fmt::format("{} {}: {}", request->operation, target_of(*request), e.message);
      if (auto h = hint(e.code, *bucket); !h.empty()) e.message += "; " + h;
      take_request_ids(e, resp);
      return e;
    }
    (*shared_cb)(std::move(value));
    return std::nullopt;
  };
  op->give_up = [shared_cb](Error e) { (*shared_cb)(tl::unexpected(std::move(e))); };
  submit(std::move(op));
}

void Client::submit(std::unique_ptr<Op> op) {
  impl_->queue.push_back(std::move(op));
  pump();
}

void Client::set_held(bool held) {
  impl_->held = held;
  if (!held) pump();
}

void Client::pump() {
  auto& im = *impl_;
  while (!im.held && !im.queue.empty()) {
    // Keys being refreshed (or refused): the request waits for new ones
    // without taking a place in the window.
    if (const auto& src = im.queue.front()->bucket->credentials;
        src && src->keys(std::chrono::system_clock::now()) == nullptr) {
      auto op = std::move(im.queue.front());
      im.queue.pop_front();
      park(std::move(op));
      continue;
    }
    const auto now = Pacer::Clock::now();
    const auto adm = im.pacer.try_acquire(now);
    if (adm.go) {
      auto op = std::move(im.queue.front());
      im.queue.pop_front();
      dispatch(std::move(op));
      continue;
    }
    if (!adm.wait_for_completion && !im.wake_armed) {
      im.wake_armed = true;
      im.wake_timer = im.loop.call_at(adm.retry_at, [this] {
        impl_->wake_armed = false;
        pump();
      });
    }
    break;  // a completion or the wake timer pumps again
  }
}

void Client::park(std::unique_ptr<Op> op) {
  auto& im = *impl_;
  credentials::Source* src = op->bucket->credentials.get();
  auto& list = im.parked[src];
  const bool first = list.empty();
  list.push_back(std::move(op));
  ++im.parked_count;
  if (!first) return;
  // One wake-up per source, whatever the number waiting.
  src->when_ready([this, src, alive = std::weak_ptr<bool>(im.alive)](const std::optional<Error>& e) {
    if (alive.lock()) unpark(src, e);
  });
}

void Client::unpark(credentials::Source* source, const std::optional<Error>& e) {
  auto& im = *impl_;
  auto it = im.parked.find(source);
  if (it == im.parked.end()) return;  // given up for a stop meanwhile
  auto list = std::move(it->second);
  im.parked.erase(it);
  im.parked_count -= list.size();
  if (e) {
    // The source gave up: its keys expired and could not be renewed.
    for (auto& op : list) {
      ++im.stats.by_operation[op->request.operation].failed;
      ++im.stats.total.failed;
      auto give_up = std::move(op->give_up);
      Error err = *e;
      err.message = fmt::format("{} {}: not sent: {}", op->request.operation, target_of(op->request), e->message);
      op.reset();
      give_up(std::move(err));
    }
    return;
  }
  // Ahead of the queue, in their order: they were next when they stopped.
  for (auto r = list.rbegin(); r != list.rend(); ++r) im.queue.push_front(std::move(*r));
  pump();
}

void Client::dispatch(std::unique_ptr<Op> op) {
  auto& im = *impl_;
  auto& st = im.stats.by_operation[op->request.operation];
  ++st.requests;
  ++im.stats.total.requests;
  static const sigv4::Credentials kNoKeys;
  const Bucket& bucket = im.moved.empty() ? *op->bucket : im.addressed(op->bucket);
  const auto now = std::chrono::system_clock::now();
  const sigv4::Credentials* keys = bucket.credentials ? bucket.credentials->keys(now) : &kNoKeys;
  if (keys == nullptr) keys = &kNoKeys;  // pump() parks those without keys; this cannot be reached
  op->signed_with = keys->access_key_id;
  auto req = to_http(op->request, bucket, *keys, now);
  if (op->timeout.count() > 0) req.timeout = op->timeout;
  ++im.in_flight;
  op->sent = Pacer::Clock::now();
  // The Op moves into the callback and comes back to on_response.
  auto holder = std::make_shared<std::unique_ptr<Op>>(std::move(op));
  im.http.send(std::move(req),
               [this, holder](http::Response resp) { on_response(std::move(*holder), std::move(resp)); });
}

void Client::on_response(std::unique_ptr<Op> op, http::Response resp) {
  auto& im = *impl_;
  --im.in_flight;
  auto& st = im.stats.by_operation[op->request.operation];
  const auto now = Pacer::Clock::now();
  im.stats.latency[op->request.operation].observe(now - op->sent);
  auto err = op->interpret(resp);
  if (!err) {
    ++st.answered_ok;
    im.pacer.release(now, Pacer::Outcome::Ok);
    pump();
    return;
  }
  const bool throttled = err->kind == ErrorKind::Throttled;
  if (throttled) {
    ++st.throttled;
    ++im.stats.total.throttled;
  } else {
    ++st.errors;
  }
  im.pacer.release(now, throttled ? Pacer::Outcome::Throttled : Pacer::Outcome::Failed);
  const bool taken = resign(op, resp, *err) || (!op->redirected && !im.backoff.stopped() && redirect(op, resp, *err));
  if (!taken) retry_or_give_up(std::move(op), resp, std::move(*err));
  pump();
}

// Expired or revoked keys: the source fetches new ones (unless it has
// already), and the request goes out again signed with them. Not a
// failure of the request, so its attempts are not spent. A refusal that
// does not say the keys are at fault (a HEAD's bare 403, or the plain
// AccessDenied Ceph RGW gives a removed key) goes again at once when its
// keys were replaced while it was on the wire; signed with the current
// ones, it makes the source doubt them (a fetch at most every ten
// seconds) and goes once more: a second such refusal is a real one.
bool Client::resign(std::unique_ptr<Op>& op, const http::Response& resp, const Error& err) {
  auto& im = *impl_;
  const auto& source = op->bucket->credentials;
  const bool refreshable = source && source->refreshable();
  const bool said_expired = err.kind == ErrorKind::AccessDenied && credentials_refused(err.code);
  const bool bare_refusal = resp.transport_ok() && resp.body.empty() && (resp.status == 400 || resp.status == 403);
  const bool denied = err.kind == ErrorKind::AccessDenied || bare_refusal;
  const bool replaced = refreshable && op->signed_with != source->stats().access_key_id;
  if (!refreshable || op->refusals >= kMaxRefusals || im.backoff.stopped() ||
      !(said_expired || (denied && (replaced || op->refusals == 0))))
    return false;
  ++op->refusals;
  ++im.stats.resigned;
  logging::debug("s3.resign", fmt::format("{}: signing again with fresh credentials", err.describe()));
  if (said_expired) {
    source->refused(op->signed_with);
  } else if (!replaced) {
    source->doubt(op->signed_with);
  }
  im.queue.push_front(std::move(op));
  return true;
}

// After a backoff (a stop gives it up instead), or for good once its
// attempts are spent.
void Client::retry_or_give_up(std::unique_ptr<Op> op, const http::Response& resp, Error err) {
  auto& im = *impl_;
  auto& st = im.stats.by_operation[op->request.operation];
  if (err.code == "NotImplemented") lacks(im.addressed(op->bucket), op->request.operation);
  ++op->failures;
  // A server that says when to come back is heeded (within reason).
  const auto after = retry_after(resp.header("retry-after").value_or("")).value_or(std::chrono::milliseconds(0));
  const auto delay = im.backoff.delay(op->failures, err.kind, after);
  if (delay && im.backoff.stopped()) {
    // A stop is under way: what fails now is given up, not retried later.
    interrupt(std::move(op), fmt::format("{} (not retried: {})", err.describe(), im.backoff.why_stopped()));
  } else if (delay) {
    ++st.retries;
    ++im.stats.total.retries;
    logging::debug("s3.retry", fmt::format("{} (attempt {}), retrying in {} ms", err.describe(), op->failures,
                                           std::chrono::duration_cast<std::chrono::milliseconds>(*delay).count()));
    auto holder = std::make_shared<std::unique_ptr<Op>>(std::move(op));
    im.backoff.wait(
        *delay,
        [this, holder] {
          // A retry goes first: it has waited already, and finishing work bounds memory.
          impl_->queue.push_front(std::move(*holder));
          pump();
        },
        [this, holder](const Error&) { not_sent(std::move(*holder), impl_->backoff.why_stopped()); });
  } else {
    ++st.failed;
    ++im.stats.total.failed;
    if (op->failures > 1) err.message += fmt::format(" (after {} attempts)", op->failures);
    auto give_up = std::move(op->give_up);
    op.reset();
    give_up(std::move(err));
  }
}

bool Client::redirect(std::unique_ptr<Op>& op, const http::Response& resp, const Error& err) {
  auto& im = *impl_;
  auto region = region_from_answer(resp);
  const Bucket& now_at = im.addressed(op->bucket);
  if (!region) {
    // A redirect that does not say where: HeadBucket does (its answer
    // carries x-amz-bucket-region whatever its status), then the request
    // goes again.
    if (err.code != "PermanentRedirect" || op->request.operation == "HeadBucket") return false;
    op->redirected = true;
    auto holder = std::make_shared<std::unique_ptr<Op>>(std::move(op));
    head_bucket(now_at, [this, holder](const Result<bool>&) {
      impl_->queue.push_front(std::move(*holder));
      pump();
    });
    return true;
  }
  if (*region == now_at.endpoint.region) return false;  // already there: the refusal is something else
  auto to = std::make_shared<const Bucket>(
      Bucket{now_at.endpoint.in_region(*region), now_at.credentials, now_at.name, now_at.unsigned_payload});
  logging::info("s3.bucket_region",
                fmt::format("bucket {} is in region {}, not {}: its requests go to {} signed for {} from now on "
                            "(learned from {} to {})",
                            now_at.name, *region, now_at.endpoint.region, to->endpoint.authority(), *region, err.code,
                            op->request.operation),
                {{"bucket", now_at.name}, {"region", *region}, {"was", now_at.endpoint.region}});
  im.moved.emplace_back(op->bucket, to);
  im.learned_regions[now_at.name] = *region;
  ++im.stats.redirected;
  op->redirected = true;
  im.queue.push_front(std::move(op));
  return true;
}

void Client::lacks(const Bucket& b, const std::string& operation) {
  auto& im = *impl_;
  auto& caps = im.lacking.try_emplace(b.endpoint.authority(), known_capabilities(b.endpoint)).first->second;
  const char* instead = nullptr;
  if (operation == "DeleteObjects" && caps.multi_delete) {
    caps.multi_delete = false;
    instead = "deleting one key per DeleteObject from now on";
  } else if (operation == "UploadPartCopy" && caps.part_copy) {
    caps.part_copy = false;
    instead = "large objects are streamed through assetmv instead (within --memory-budget)";
  } else if ((operation == "GetObjectTagging" || operation == "PutObjectTagging") && caps.tagging) {
    caps.tagging = false;
    instead = "no tags are read or written from now on";
  }
  if (instead != nullptr)
    logging::info("s3.store_lacks",
                  fmt::format("the store at {} answers {} with 501 NotImplemented: {}", b.endpoint.authority(),
                              operation, instead),
                  {{"endpoint", b.endpoint.authority()}, {"operation", operation}});
}

Capabilities Client::capabilities(const Bucket& b) const {
  auto it = impl_->lacking.find(b.endpoint.authority());
  return it == impl_->lacking.end() ? known_capabilities(b.endpoint) : it->second;
}

const std::map<std::string, std::string>& Client::learned_regions() const { return impl_->learned_regions; }

void Client::list_objects_v2(const Bucket& b, const ListParams& p, Callback<ListPage> cb) {
  run<ListPage>(
      b, s3::list_objects_v2(b.name, p), [](http::Response& r) { return parse_list_objects_v2(r.body); },
      std::move(cb));
}

void Client::head_object(const Bucket& b, const std::string& key, Callback<ObjectInfo> cb) {
  run<ObjectInfo>(
      b, s3::head_object(b.name, key), [](http::Response& r) -> Result<ObjectInfo> { return info_from_headers(r); },
      std::move(cb));
}

void Client::head_bucket(const Bucket& b, Callback<bool> cb) {
  run<bool>(
      b, s3::head_bucket(b.name), [](http::Response&) -> Result<bool> { return true; }, std::move(cb));
}

void Client::get_object(const Bucket& b, const std::string& key, Callback<GetResult> cb) {
  get_object(b, key, GetParams{}, std::move(cb));
}

void Client::get_object(const Bucket& b, const std::string& key, const GetParams& p, Callback<GetResult> cb) {
  run<GetResult>(
      b, s3::get_object(b.name, key, p),
      [](http::Response& r) -> Result<GetResult> {
        GetResult g{info_from_headers(r), std::move(r.body)};
        g.info.size = g.body.size();
        return g;
      },
      std::move(cb));
}

namespace {
// The answer a store that lacks an operation would give, given without asking it.
Error not_implemented(const Bucket& b, std::string_view operation) {
  return Error{ErrorKind::Fatal, "NotImplemented",
               fmt::format("{} is not implemented by the store at {}", operation, b.endpoint.authority()), 501};
}
}  // namespace

void Client::get_object_tagging(const Bucket& b, const std::string& key, Callback<std::vector<Tag>> cb) {
  if (!capabilities(b).tagging) {
    impl_->loop.post([cb = std::move(cb), e = not_implemented(b, "GetObjectTagging")] { cb(tl::unexpected(e)); });
    return;
  }
  run<std::vector<Tag>>(
      b, s3::get_object_tagging(b.name, key), [](http::Response& r) { return parse_tagging(r.body); }, std::move(cb));
}

void Client::put_object_tagging(const Bucket& b, const std::string& key, const std::vector<Tag>& tags,
                                Callback<bool> cb) {
  if (!capabilities(b).tagging) {
    impl_->loop.post([cb = std::move(cb), e = not_implemented(b, "PutObjectTagging")] { cb(tl::unexpected(e)); });
    return;
  }
  run<bool>(
      b, s3::put_object_tagging(b.name, key, tags), [](http::Response&) -> Result<bool> { return true; },
      std::move(cb));
}

void Client::get_bucket_ownership_controls(const Bucket& b, Callback<std::string> cb) {
  run<std::string>(
      b, s3::get_bucket_ownership_controls(b.name), [](http::Response& r) { return parse_ownership_controls(r.body); },
      std::move(cb));
}

void Client::get_bucket_versioning(const Bucket& b, Callback<std::string> cb) {
  run<std::string>(
      b, s3::get_bucket_versioning(b.name), [](http::Response& r) { return parse_versioning(r.body); }, std::move(cb));
}

void Client::put_object(const Bucket& b, const std::string& key, std::string body, const PutParams& p,
                        Callback<std::string> cb) {
  run<std::string>(
      b, s3::put_object(b.name, key, std::move(body), p),
      [](http::Response& r) -> Result<std::string> { return unquote_etag(r.header("etag").value_or("")); },
      std::move(cb));
}

void Client::copy_object(const Bucket& dest, CopyParams p, Callback<std::string> cb) {
  p.legacy_if_match_header = !dest.endpoint.is_aws();
  run<std::string>(
      dest, s3::copy_object(dest.name, std::move(p)), [](http::Response& r) { return parse_copy_result(r.body); },
      std::move(cb), impl_->opt.copy_timeout);
}

void Client::delete_objects(const Bucket& b, const std::vector<ObjectVersion>& objects, Callback<DeleteResult> cb) {
  // Refused here rather than by the server, so no batch is half-understood.
  std::optional<Error> refused;
  if (objects.empty() || objects.size() > kMaxDeleteKeys)
    refused = Error{ErrorKind::Fatal, "InvalidBatch",
                    fmt::format("DeleteObjects takes 1 to {} keys, not {}", kMaxDeleteKeys, objects.size()), 0};
  for (const auto& o : objects) {
    if (!refused && (!xml_representable(o.key) || !xml_representable(o.version_id)))
      refused = Error{
          ErrorKind::Fatal, "InvalidBatch",
          fmt::format("key {} has bytes XML cannot carry; delete it with DeleteObject", sigv4::uri_encode(o.key, true)),
          0};
  }
  if (refused) {
    impl_->loop.post([cb = std::move(cb), e = std::move(*refused)]() mutable { cb(tl::unexpected(std::move(e))); });
    return;
  }
  if (!capabilities(b).multi_delete) return delete_one_by_one(b, objects, std::move(cb));
  auto bucket = impl_->intern(b);
  run<DeleteResult>(
      *bucket, s3::delete_objects(bucket->name, objects, true),
      [](http::Response& r) { return parse_delete_result(r.body); },
      [this, bucket, objects, cb = std::move(cb)](Result<DeleteResult> r) mutable {
        // Learned now (on_response marked the store): this batch goes key by key too.
        if (!r && r.error().code == "NotImplemented") return delete_one_by_one(*bucket, objects, std::move(cb));
        cb(std::move(r));
      });
}

// A store without DeleteObjects: one DeleteObject per key, answered as one
// DeleteObjects would be. A key already absent is deleted (as DeleteObjects
// says of it); one given up for a stop is reported as Interrupted.
void Client::delete_one_by_one(const Bucket& b, const std::vector<ObjectVersion>& objects, Callback<DeleteResult> cb) {
  struct Batch {
    DeleteResult result;
    std::size_t outstanding = 0;
    Callback<DeleteResult> cb;
  };
  auto batch = std::make_shared<Batch>();
  batch->outstanding = objects.size();
  batch->cb = std::move(cb);
  for (const auto& o : objects) {
    delete_object(b, o, [batch, key = o.key](Result<bool> r) {
      if (r || r.error().kind == ErrorKind::NotFound)
        batch->result.deleted.push_back(key);
      else
        batch->result.failed.push_back({key, r.error().code, r.error().message});
      if (--batch->outstanding == 0) batch->cb(std::move(batch->result));
    });
  }
}

void Client::delete_object(const Bucket& b, const ObjectVersion& object, Callback<bool> cb) {
  run<bool>(
      b, s3::delete_object(b.name, object), [](http::Response&) -> Result<bool> { return true; }, std::move(cb));
}

void Client::probe_upload(const Bucket& b, const std::string& key, const std::vector<http::Header>& headers,
                          Callback<bool> cb) {
  auto bucket = impl_->intern(b);  // for the abort, sent after the caller's reference may be gone
  run<std::string>(
      *bucket, create_multipart_upload(bucket->name, key, headers, ""),
      [](http::Response& r) { return parse_initiate_multipart(r.body); },
      [this, bucket, key, cb = std::move(cb)](Result<std::string> id) mutable {
        if (!id) return cb(tl::unexpected(id.error()));
        run<bool>(
            *bucket, abort_multipart_upload(bucket->name, key, *id),
            [](http::Response&) -> Result<bool> { return true; },
            [bucket, cb = std::move(cb)](Result<bool> r) { cb(std::move(r)); });
      });
}

// ---- multipart uploads: UploadPartCopy, or streamed between two services ---

struct Client::Upload {
  std::shared_ptr<const Bucket> source;  // the later steps run after the caller's references may be gone
  std::shared_ptr<const Bucket> dest;
  CopyParams params;
  std::uint64_t size = 0;
  std::uint64_t part_size = 0;
  std::string upload_id;
  std::vector<CompletedPart> parts;
  std::size_t outstanding = 0;  // parts started and not answered (waiting for budget included)
  bool finished = false;        // Complete or Abort sent: once only
  std::optional<Error> error;   // the first part's failure
  std::vector<Tag> tags;        // the source's, set again after Complete where the create ignores them
  Callback<std::string> cb;
  // Streamed only: the bytes held under the caller's budget (which outlives
  // every operation: the store owns both), each part's MD5, the next to start.
  ByteBudget* budget = nullptr;
  std::vector<Md5> md5s;
  std::size_t next = 0;
};

Client::UploadPtr Client::new_upload(const Bucket& source, const Bucket& dest, const CopyParams& p, std::uint64_t size,
                                     std::uint64_t part_size, Callback<std::string>& cb) {
  const std::uint64_t parts = size == 0 ? 1 : (part_size == 0 ? 0 : (size + part_size - 1) / part_size);
  if (part_size == 0 || parts > static_cast<std::uint64_t>(kMaxParts)) {
    cb(fail(ErrorKind::Fatal, "InvalidPartSize",
            fmt::format("{} bytes in parts of {} bytes exceeds {} parts", size, part_size, kMaxParts)));
    return nullptr;
  }
  auto up = std::make_shared<Upload>();
  up->source = impl_->intern(source);
  up->dest = impl_->intern(dest);
  up->params = p;
  up->size = size;
  up->part_size = part_size;
  up->parts.resize(parts);
  up->cb = std::move(cb);
  return up;
}

void Client::create_upload(const UploadPtr& up, std::function<void(const UploadPtr&)> parts) {
  auto created = [up, parts = std::move(parts)](Result<std::string> id, std::vector<Tag> tags) {
    if (!id) return up->cb(tl::unexpected(id.error()));
    up->upload_id = std::move(*id);
    up->tags = std::move(tags);
    parts(up);
  };
  head_object(*up->source, up->params.source_key, [this, up, created](Result<ObjectInfo> info) {
    const CopyParams& p = up->params;
    if (!info) return up->cb(tl::unexpected(info.error()));
    if (!p.if_match.empty() && !etag_equal(info->etag, p.if_match))
      return up->cb(fail(ErrorKind::PreconditionFailed, "PreconditionFailed",
                         fmt::format("{} changed since it was listed", p.source_key), 412));
    const bool untagged = info->tag_count == std::uint64_t{0};
    auto create = [this, up, created, source_info = std::move(*info)](const std::vector<Tag>& tags) {
      const CopyParams& params = up->params;
      run<std::string>(
          *up->dest,
          create_multipart_upload(up->dest->name, params.dest_key,
                                  with_overrides(source_info.replayable, params.dest_headers), source_info.etag, tags),
          [](http::Response& r) { return parse_initiate_multipart(r.body); },
          [created, tags](Result<std::string> id) { created(std::move(id), tags); });
    };
    // The parts carry none of the object's tags: read them, unless the HEAD
    // said there are none.
    if (untagged) return create({});
    get_object_tagging(*up->source, p.source_key, [up, create](Result<std::vector<Tag>> tags) {
      // A store without the tagging API (501 NotImplemented) has none to carry.
      if (!tags && tags.error().code == "NotImplemented") return create({});
      if (!tags) return up->cb(tl::unexpected(tags.error()));
      create(*tags);
    });
  });
}

bool Client::part_done(Upload& up, std::size_t index, Result<std::string> etag) {
  if (etag)
    up.parts[index] = {static_cast<int>(index) + 1, std::move(*etag)};
  else if (!up.error)
    up.error = etag.error();
  return --up.outstanding == 0;
}

// Leave no half-made upload behind; its own failure changes nothing.
void Client::abandon_upload(const Bucket& b, const std::string& key, const std::string& upload_id) {
  run<bool>(
      b, abort_multipart_upload(b.name, key, upload_id), [](http::Response&) -> Result<bool> { return true; },
      [](const Result<bool>&) {});
}

void Client::finish_upload(const UploadPtr& up, CompletedCheck check) {
  if (up->finished) return;
  up->finished = true;
  const Bucket& b = *up->dest;
  if (up->error) {
    abandon_upload(b, up->params.dest_key, up->upload_id);
    return up->cb(tl::unexpected(*up->error));
  }
  run<std::string>(
      b, complete_multipart_upload(b.name, up->params.dest_key, up->upload_id, up->parts, up->params.if_none_match),
      [](http::Response& r) { return parse_complete_multipart(r.body); },
      [this, up, check = std::move(check)](Result<std::string> r) {
        tag_completed(up->dest, up->params.dest_key, up->tags, check(std::move(r)), up->cb);
      },
      impl_->opt.copy_timeout);
}

void Client::tag_completed(const std::shared_ptr<const Bucket>& b, const std::string& key, const std::vector<Tag>& tags,
                           Result<std::string> completed, Callback<std::string> cb) {
  if (!completed || tags.empty() || b->endpoint.is_aws()) return cb(std::move(completed));
  put_object_tagging(*b, key, tags, [cb = std::move(cb), etag = *completed](Result<bool> tagged) {
    if (!tagged) return cb(tl::unexpected(tagged.error()));
    cb(etag);
  });
}

// ---- multipart_copy: UploadPartCopy on one service --------------------------

void Client::multipart_copy(const Bucket& dest, const CopyParams& p, std::uint64_t size, std::uint64_t part_size,
                            Callback<std::string> cb) {
  if (!capabilities(dest).part_copy) {
    impl_->loop.post([cb = std::move(cb), e = not_implemented(dest, "UploadPartCopy")] { cb(tl::unexpected(e)); });
    return;
  }
  // Server-side, so the source is on the same service, with the same keys.
  auto up = new_upload(bucket_on(dest.endpoint, dest.credentials, p.source_bucket), dest, p, size, part_size, cb);
  if (up) create_upload(up, [this](const UploadPtr& u) { copy_parts(u); });
}

// All parts at once: each is a request the store serves without our bytes.
void Client::copy_parts(const UploadPtr& up) {
  const Bucket& b = *up->dest;
  up->outstanding = up->parts.size();
  for (std::size_t i = 0; i < up->parts.size(); ++i) {
    const std::uint64_t first = up->size == 0 ? 1 : i * up->part_size;  // empty: no range, the whole object
    const std::uint64_t last = up->size == 0 ? 0 : std::min(up->size, first + up->part_size) - 1;
    run<std::string>(
        b, upload_part_copy(b.name, up->params, up->upload_id, static_cast<int>(i) + 1, first, last),
        [](http::Response& r) { return parse_copy_result(r.body); },
        [this, up, i](Result<std::string> etag) {
          if (part_done(*up, i, std::move(etag))) finish_upload(up, [](Result<std::string> r) { return r; });
        },
        impl_->opt.copy_timeout);
  }
}

// ---- stream_copy: between two services --------------------------------------

void Client::stream_copy(const Bucket& source, const Bucket& dest, const CopyParams& p, std::uint64_t size,
                         std::uint64_t part_size, ByteBudget& budget, Callback<std::string> cb) {
  if (size <= part_size) return stream_single(source, dest, p, size, budget, std::move(cb));
  auto up = new_upload(source, dest, p, size, part_size, cb);
  if (!up) return;
  up->budget = &budget;
  up->md5s.resize(up->parts.size());
  create_upload(up, [this](const UploadPtr& u) { stream_parts(u); });
}

// One GET, one PUT: the GET's headers are the source's.
void Client::stream_single(const Bucket& source, const Bucket& dest, const CopyParams& params, std::uint64_t size,
                           ByteBudget& budget, Callback<std::string> cb) {
  const std::uint64_t held = 2 * size;
  auto src = impl_->intern(source);
  auto dst = impl_->intern(dest);
  budget.acquire(held, [this, src, dst, params, held, budget = &budget, cb = std::move(cb)]() mutable {
    auto done = [budget, held, cb = std::move(cb)](Result<std::string> r) {
      budget->release(held);
      cb(std::move(r));
    };
    get_object(*src, params.source_key, GetParams{1, 0, params.if_match},
               [this, src, dst, params, done](Result<GetResult> got) mutable {
                 if (!got) return done(tl::unexpected(got.error()));
                 // S3 sends x-amz-tagging-count only when there are tags: an
                 // untagged object (most, and every small one) costs no second read.
                 const bool untagged = got->info.tag_count.value_or(0) == 0;
                 auto put = [this, dst, params, done, got = std::move(got)](const std::vector<Tag>& tags) mutable {
                   PutParams p;
                   p.content_type =
                       got->info.content_type.empty() ? "application/octet-stream" : got->info.content_type;
                   p.if_none_match = params.if_none_match;
                   p.headers = with_overrides(std::move(got->info.replayable), params.dest_headers);
                   if (!tags.empty()) p.headers.push_back({"x-amz-tagging", tagging_header(tags)});
                   if (!etag_is_md5(got->info.etag)) p.headers.push_back({kSourceEtagHeader, got->info.etag});
                   put_object(*dst, params.dest_key, std::move(got->body), p, done);
                 };
                 if (untagged) return put({});
                 get_object_tagging(*src, params.source_key, [put, done](Result<std::vector<Tag>> tags) mutable {
                   if (!tags && tags.error().code == "NotImplemented") return put({});  // no tagging API, no tags
                   if (!tags) return done(tl::unexpected(tags.error()));
                   put(*tags);
                 });
               });
  });
}

// kStreamPartsInFlight parts at a time, each a ranged GET then an UploadPart
// whose ETag must be the part's MD5, its bytes held under the budget.
void Client::stream_parts(const UploadPtr& up) {
  if (!up->error && impl_->backoff.stopped())
    up->error = Error{ErrorKind::Interrupted, "Interrupted", "not finished: " + impl_->backoff.why_stopped(), 0};
  while (!up->error && up->next < up->parts.size() && up->outstanding < kStreamPartsInFlight) {
    const std::size_t i = up->next++;
    ++up->outstanding;
    const std::uint64_t first = i * up->part_size;
    const std::uint64_t last = std::min(up->size, first + up->part_size) - 1;
    const std::uint64_t held = 2 * (last - first + 1);
    up->budget->acquire(held, [this, up, i, first, last, held] {
      if (up->error) return stream_part_done(up, i, held, tl::unexpected(*up->error));  // another part failed
      get_object(
          *up->source, up->params.source_key, GetParams{first, last, up->params.if_match},
          [this, up, i, held](Result<GetResult> got) {
            if (!got) return stream_part_done(up, i, held, tl::unexpected(got.error()));
            up->md5s[i] = md5(got->body);
            const int number = static_cast<int>(i) + 1;
            run<std::string>(
                *up->dest,
                upload_part(up->dest->name, up->params.dest_key, up->upload_id, number, std::move(got->body)),
                [](http::Response& r) -> Result<std::string> { return unquote_etag(r.header("etag").value_or("")); },
                [this, up, i, number, held](Result<std::string> etag) {
                  if (etag && !etag_equal(*etag, hex(up->md5s[i])))
                    etag = tl::unexpected(Error{ErrorKind::Fatal, "BadDigest",
                                                fmt::format("part {} of {} came back with ETag {}, not its "
                                                            "MD5 {}",
                                                            number, up->params.dest_key, *etag, hex(up->md5s[i])),
                                                0});
                  stream_part_done(up, i, held, std::move(etag));
                });
          });
    });
  }
  // Stopped before any part of this round started: nothing is left to
  // answer, so the upload is aborted here.
  if (up->error && up->outstanding == 0) finish_upload(up, {});
}

void Client::stream_part_done(const UploadPtr& up, std::size_t index, std::uint64_t held, Result<std::string> etag) {
  const bool last = part_done(*up, index, std::move(etag));
  // May grant a waiting part, of this object or another; one of this
  // object's that sees the error ends inside, and may finish the upload.
  up->budget->release(held);
  if (!up->error && up->next < up->parts.size()) return stream_parts(up);  // keep the pipeline full
  if (!last) return;
  finish_upload(up, [up](Result<std::string> r) {
    // A store that names its multipart ETags as S3 does must give the one
    // these parts make; one that names them otherwise is not judged.
    const std::string want = multipart_etag(up->md5s);
    if (r && r->find('-') != std::string::npos && r->size() == want.size() && !etag_equal(*r, want))
      return Result<std::string>(
          fail(ErrorKind::Fatal, "BadDigest",
               fmt::format("{} completed with ETag {}, not the {} its parts make", up->params.dest_key, *r, want)));
    return r;
  });
}

}  // namespace assetmv::s3

// The asynchronous S3 client: each operation is built (requests.hpp), paced
// by the shared Pacer, signed at the moment it is sent, retried with the
// RetryPolicy when its failure is retryable, and parsed (parsers.hpp) into a
// value or an Error delivered to a callback on the loop's thread.
//
// An operation keeps its own reference to the Bucket it was given (buckets
// are interned: one shared copy per distinct bucket), so a caller's Bucket
// may go out of scope while its operations retry. The
// client queues without bound, so callers bound what they submit (the engine
// and the seeder keep a fixed window of work outstanding).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/byte_budget.hpp"
#include "core/error.hpp"
#include "core/histogram.hpp"
#include "core/loop.hpp"
#include "core/pacer.hpp"
#include "core/retry.hpp"
#include "http/http.hpp"
#include "s3/location.hpp"
#include "s3/parsers.hpp"
#include "s3/requests.hpp"

namespace assetmv::s3 {

struct ObjectInfo {
  std::uint64_t size = 0;
  std::string etag;  // without quotes
  std::string content_type;
  std::string last_modified;
  std::string source_etag;                 // kSourceEtagHeader: set on multipart copies this tool made
  std::vector<http::Header> replayable;    // what a REPLACE copy sends to keep it as it is (replayable_headers)
  std::optional<std::uint64_t> tag_count;  // x-amz-tagging-count; absent when the store does not say
  std::string restore;                     // x-amz-restore: an archived object's restore state; empty: none asked
  std::vector<http::Header> encryption;    // x-amz-server-side-encryption*: how the store encrypted it
  std::string version_id;                  // x-amz-version-id: on a versioned bucket, which version answered
};

struct GetResult {
  ObjectInfo info;
  std::string body;
};

struct ClientOptions {
  RetryPolicy retry;
  Pacer::Options pacer;
  // A server-side copy of a large object or part can take minutes.
  std::chrono::milliseconds copy_timeout{15 * 60 * 1000};
};

struct OpStats {
  std::uint64_t requests = 0;  // attempts sent, retries included
  std::uint64_t retries = 0;
  std::uint64_t throttled = 0;    // answers classified as throttling
  std::uint64_t failed = 0;       // operations that ended in an error
  std::uint64_t answered_ok = 0;  // attempts answered without an error
  std::uint64_t errors = 0;       // attempts that ended in an error other than throttling
};

struct ClientStats {
  std::map<std::string, OpStats> by_operation;
  OpStats total;
  // Attempts refused for their credentials (expired, invalid, unknown keys)
  // and sent again, signed with fresh ones: not failures, and not retries.
  std::uint64_t resigned = 0;
  // Attempts answered from another region (PermanentRedirect,
  // AuthorizationHeaderMalformed) and sent again to the bucket's own.
  std::uint64_t redirected = 0;
  // Each attempt's time from sending to its answer, by operation (for
  // /metrics; stats_since leaves it whole).
  std::map<std::string, Histogram> latency;
};

// What was counted after `before` was taken: a phase's own requests (the
// preflight's checks apart from the run's work).
ClientStats stats_since(const ClientStats& now, const ClientStats& before);

// A server's Retry-After in seconds, capped at kMaxRetryAfter; nullopt when
// absent or not a number of seconds (the HTTP-date form is not used by S3).
inline constexpr std::chrono::seconds kMaxRetryAfter{60};  // beyond a minute, the stall and outage rules decide
std::optional<std::chrono::milliseconds> retry_after(std::string_view value);

// What a store can do beyond the basics. GCS's XML API has no multi-object
// delete, no object tagging and no UploadPartCopy (known by its host); any
// store that answers 501 NotImplemented to one of them is taken to lack it
// from then on, once per run, and the log says so.
struct Capabilities {
  bool multi_delete = true;  // DeleteObjects; without it, one DeleteObject per key
  bool part_copy = true;     // UploadPartCopy; without it the engine streams large copies
  bool tagging = true;       // GetObjectTagging, PutObjectTagging; without it no tags are read or written
  bool operator==(const Capabilities&) const = default;
};
Capabilities known_capabilities(const Endpoint& ep);

// The region a redirect or a refusal names for the bucket (x-amz-bucket-region,
// or the error body's <Region>), when the answer says the request went to
// the wrong region (301 PermanentRedirect, 400 AuthorizationHeaderMalformed,
// IllegalLocationConstraintException, a HEAD's bare 301 or 400). Pure.
std::optional<std::string> region_from_answer(const http::Response& resp);
// Whether an S3 error code says the request's keys are no good any more
// (ExpiredToken, InvalidToken, TokenRefreshRequired) or unknown to the store
// (InvalidAccessKeyId: a revoked temporary key). Pure.
bool credentials_refused(std::string_view code);

// Turns a non-success HTTP exchange into an Error with a clear message,
// classified by classify_http(). Pure; exposed for tests.
Error error_from_response(const http::Response& resp, const S3Request& req, const Bucket& bucket);

class Client {
 public:
  template <class T>
  using Callback = std::function<void(Result<T>)>;

  Client(EventLoop& loop, http::Client& http, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void list_objects_v2(const Bucket& b, const ListParams& p, Callback<ListPage> cb);
  void head_object(const Bucket& b, const std::string& key, Callback<ObjectInfo> cb);
  void head_bucket(const Bucket& b, Callback<bool> cb);
  void get_object(const Bucket& b, const std::string& key, Callback<GetResult> cb);
  void get_object(const Bucket& b, const std::string& key, const GetParams& p, Callback<GetResult> cb);
  void get_object_tagging(const Bucket& b, const std::string& key, Callback<std::vector<Tag>> cb);
  void put_object_tagging(const Bucket& b, const std::string& key, const std::vector<Tag>& tags, Callback<bool> cb);
  void get_bucket_ownership_controls(const Bucket& b, Callback<std::string> cb);
  void get_bucket_versioning(const Bucket& b, Callback<std::string> cb);
  void put_object(const Bucket& b, const std::string& key, std::string body, const PutParams& p,
                  Callback<std::string> cb);
  // Server-side copy into `dest` (source bucket named in p, on the same
  // service). Delivers the new object's ETag; a 200 carrying <Error> is an error.
  // On non-AWS endpoints the source condition also goes out under RGW's
  // legacy header name, so it holds there too.
  void copy_object(const Bucket& dest, CopyParams p, Callback<std::string> cb);
  // Copies an object of `size` bytes with UploadPartCopy in parts of
  // `part_size` bytes (for objects over the single-copy limit). Aborts the
  // upload on failure. Delivers the new (multipart) ETag. The parts carry
  // nothing of the source's headers, so the source is read first (HEAD,
  // same service) for its Content-Type and to check p.if_match, and its
  // ETag goes into the copy's metadata. Ceph RGW 16 ignores the source
  // condition on UploadPartCopy: callers re-check the source's ETag after.
  void multipart_copy(const Bucket& dest, const CopyParams& p, std::uint64_t size, std::uint64_t part_size,
                      Callback<std::string> cb);
  // Copies an object between two services, which cannot copy server-side:
  // its bytes pass through this process, held under `budget` from their read
  // to their write's answer (twice: the request kept for a retry and the one
  // on the wire). Up to part_size bytes: one GET, one PUT. Larger: a
  // multipart upload whose parts are ranged GETs, kStreamPartsInFlight at a
  // time, each part's ETag checked against its MD5 and the completed
  // upload's against the one its parts make. Every read is conditional on
  // p.if_match, so the bytes are the listed version's (a change is a 412).
  // Headers, user metadata and tags come from the source (its GET or HEAD,
  // and GetObjectTagging); p.dest_headers are added; a source ETag that is
  // no MD5 goes into kSourceEtagHeader, as for a multipart copy. Delivers
  // the new ETag; aborts the upload on failure; a stop ends it between parts.
  static constexpr std::size_t kStreamPartsInFlight = 4;  // per object: enough to keep a fast link busy
  void stream_copy(const Bucket& source, const Bucket& dest, const CopyParams& p, std::uint64_t size,
                   std::uint64_t part_size, ByteBudget& budget, Callback<std::string> cb);
  // At most kMaxDeleteKeys keys, each representable in XML (see xml_escape).
  void delete_objects(const Bucket& b, const std::vector<ObjectVersion>& objects, Callback<DeleteResult> cb);
  void delete_object(const Bucket& b, const ObjectVersion& object, Callback<bool> cb);
  // Starts a multipart upload of `key` and aborts it at once: proves
  // s3:PutObject (and s3:AbortMultipartUpload) without writing an object,
  // on stores that refuse the conditional PUT the preflight tries first.
  // `headers` are what the run's writes carry (write_headers): an ACL or a
  // KMS key the store refuses is refused here too, before anything is written.
  void probe_upload(const Bucket& b, const std::string& key, const std::vector<http::Header>& headers,
                    Callback<bool> cb);

  // For a stop: from now on no operation waits out a backoff. Those waiting
  // for a retry or queued behind the pacer are given up at once, and any
  // that fails later is given up instead of retried, each with an
  // Interrupted error. Requests on the wire finish as usual, and new ones
  // (the last deletes, an upload's abort) are still sent, once: a hold
  // (set_held) ends here.
  void stop_retrying(const std::string& why);

  // While held, nothing queued is sent (an operator's pause: with a rate
  // cap, hundreds of copies can be queued behind the pacer); requests on
  // the wire finish as usual. Released, the queue goes out again.
  // stop_retrying() releases it.
  void set_held(bool held);

  std::size_t queued() const;
  std::size_t in_flight() const;
  bool idle() const { return queued() == 0 && in_flight() == 0; }
  const ClientStats& stats() const;
  Pacer& pacer();
  // What the store at b's endpoint is known (or found) to lack.
  Capabilities capabilities(const Bucket& b) const;
  // Buckets found in another region than they were given, by name.
  const std::map<std::string, std::string>& learned_regions() const;

 private:
  struct Op;
  template <class T>
  void run(const Bucket& b, S3Request req, std::function<Result<T>(http::Response&)> parse, Callback<T> cb,
           std::chrono::milliseconds timeout = {});
  void submit(std::unique_ptr<Op> op);
  void pump();
  void dispatch(std::unique_ptr<Op> op);
  void on_response(std::unique_ptr<Op> op, http::Response resp);
  // Holds an operation until its bucket's credentials can sign again.
  void park(std::unique_ptr<Op> op);
  void unpark(credentials::Source* source, const std::optional<Error>& e);
  // A request that went to the wrong region: learns the bucket's and sends
  // it again there; false when the answer names no region to go to.
  bool redirect(std::unique_ptr<Op>& op, const http::Response& resp, const Error& err);
  // A refusal of keys that can be refreshed: the op goes again, re-signed
  // (true: it was taken).
  bool resign(std::unique_ptr<Op>& op, const http::Response& resp, const Error& err);
  void retry_or_give_up(std::unique_ptr<Op> op, const http::Response& resp, Error err);
  void lacks(const Bucket& b, const std::string& operation);
  void delete_one_by_one(const Bucket& b, const std::vector<ObjectVersion>& objects, Callback<DeleteResult> cb);
  // Every multipart upload of ours, whichever moves its bytes (UploadPartCopy
  // on one service, ranged GETs and UploadPart between two), goes through one
  // state (Upload) and one verb per step:
  //   create_upload  HEAD the source (its ETag must be p.if_match), read its
  //                  tags unless the HEAD said there are none, and create the
  //                  upload with its headers, user metadata, ETag
  //                  (kSourceEtagHeader) and tags, plus p.dest_headers;
  //   part_done      one part answered: its ETag kept, or the first error;
  //   finish_upload  Complete with the parts (checked by the caller's rule),
  //                  then the tags again off AWS; or, after an error, Abort.
  struct Upload;
  using UploadPtr = std::shared_ptr<Upload>;
  // The upload's state, or nullptr when its parts would exceed kMaxParts
  // (`cb` has been answered).
  UploadPtr new_upload(const Bucket& source, const Bucket& dest, const CopyParams& p, std::uint64_t size,
                       std::uint64_t part_size, Callback<std::string>& cb);
  void create_upload(const UploadPtr& up, std::function<void(const UploadPtr&)> parts);
  // True when it was the last part outstanding.
  static bool part_done(Upload& up, std::size_t index, Result<std::string> etag);
  using CompletedCheck = std::function<Result<std::string>(Result<std::string>)>;
  void finish_upload(const UploadPtr& up, CompletedCheck check);
  void abandon_upload(const Bucket& b, const std::string& key, const std::string& upload_id);
  // Ceph RGW 16 ignores x-amz-tagging on CreateMultipartUpload (AWS honours
  // it): off AWS the tags are set again after Complete, before `cb` has the ETag.
  void tag_completed(const std::shared_ptr<const Bucket>& b, const std::string& key, const std::vector<Tag>& tags,
                     Result<std::string> completed, Callback<std::string> cb);
  void copy_parts(const UploadPtr& up);
  void stream_single(const Bucket& source, const Bucket& dest, const CopyParams& p, std::uint64_t size,
                     ByteBudget& budget, Callback<std::string> cb);
  void stream_parts(const UploadPtr& up);
  void stream_part_done(const UploadPtr& up, std::size_t index, std::uint64_t held, Result<std::string> etag);
  // Ends an operation for a stop: its callback gets an Interrupted error.
  static void interrupt(std::unique_ptr<Op> op, std::string message);
  static void not_sent(std::unique_ptr<Op> op, const std::string& why);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs the loop until an operation's callback has been called, for tools and
// tests that want one synchronous call:
//   auto r = s3::wait<ListPage>(loop, [&](auto cb) { client.list_objects_v2(b, p, cb); });
template <class T, class Start>
Result<T> wait(EventLoop& loop, Start&& start) {
  std::optional<Result<T>> out;
  start([&out](Result<T> r) { out = std::move(r); });
  if (auto w = loop.run_until("an S3 answer", [&out] { return out.has_value(); }); !w) return tl::unexpected(w.error());
  return std::move(*out);
}

}  // namespace assetmv::s3

#include "fake_world.hpp"

#include <fmt/format.h>

namespace assetmv::testing {

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

Error not_found(const std::string& key) { return Error{ErrorKind::NotFound, "NoSuchKey", "no such key " + key, 404}; }

Error precondition(const std::string& key) {
  return Error{ErrorKind::PreconditionFailed, "PreconditionFailed", "condition failed for " + key, 412};
}

}  // namespace

std::string md5_etag(int n) { return fmt::format("{:032x}", n); }

void FakeStore::hold(bool h) {
  held_ = h;
  if (held_) return;
  auto deferred = std::move(deferred_);
  deferred_.clear();
  for (auto& a : deferred) {
    --pending_;
    later(std::move(a));
  }
}

void FakeStore::later(std::function<void()> answer) {
  ++pending_;
  if (held_) return deferred_.push_back(std::move(answer));
  auto run = [this, answer = std::move(answer)] {
    --pending_;
    answer();
  };
  if (latency.count() == 0)
    loop_.post(std::move(run));
  else
    loop_.call_after(latency, std::move(run));
}

std::optional<Error> FakeStore::injected(const std::string& op, Side side, const std::string& key) {
  ++calls[op];
  return fail ? fail(op, side, key) : std::nullopt;
}

void FakeStore::list(Side side, const s3::ListParams& p, Callback<s3::ListPage> cb) {
  later([this, side, p, cb = std::move(cb)] {
    if (auto e = injected("list", side, p.prefix)) return cb(tl::unexpected(*e));
    const auto& b = bucket(side);
    const std::string after = p.continuation_token.empty() ? p.start_after : p.continuation_token;
    s3::ListPage page;
    for (auto it = after.empty() ? b.lower_bound(p.prefix) : b.upper_bound(after);
         it != b.end() && starts_with(it->first, p.prefix); ++it) {
      if (page.objects.size() == static_cast<std::size_t>(p.max_keys)) {
        page.truncated = true;
        page.next_continuation_token = page.objects.back().key;
        break;
      }
      page.objects.push_back(
          {it->first, it->second.etag, it->second.size, it->second.last_modified, it->second.storage_class});
    }
    cb(std::move(page));
  });
}

void FakeStore::head(Side side, const std::string& key, Callback<s3::ObjectInfo> cb) {
  later([this, side, key, cb = std::move(cb)] {
    if (auto e = injected("head", side, key)) return cb(tl::unexpected(*e));
    const auto& b = bucket(side);
    auto it = b.find(key);
    if (it == b.end()) return cb(tl::unexpected(not_found(key)));
    s3::ObjectInfo info;
    info.size = it->second.size;
    info.etag = it->second.etag;
    info.content_type = "image/png";
    info.source_etag = it->second.source_etag;
    info.restore = it->second.restore;
    info.version_id = it->second.version_id;
    cb(std::move(info));
  });
}

Result<std::string> FakeStore::copy_now(const s3::CopyParams& p, bool multipart) {
  if (before_copy) before_copy(p.dest_key);
  auto src = legacy.find(p.source_key);
  if (src == legacy.end()) return tl::unexpected(not_found(p.source_key));
  if (!p.if_match.empty() && !s3::etag_equal(src->second.etag, p.if_match))
    return tl::unexpected(precondition(p.source_key));
  if (p.if_none_match && honours_if_none_match && dest.count(p.dest_key) != 0U)
    return tl::unexpected(precondition(p.dest_key));
  if (s3::is_archived_class(src->second.storage_class) && !s3::restore_completed(src->second.restore))
    return tl::unexpected(Error{ErrorKind::AccessDenied, "InvalidObjectState",
                                "The operation is not valid for the object's storage class", 403});
  FakeObject copy = src->second;
  copy.last_modified = now;
  copy.restore.clear();
  copy.storage_class = "STANDARD";
  for (const auto& h : p.dest_headers)
    if (h.name == "x-amz-storage-class") copy.storage_class = h.value;
  if (multipart) {
    copy.source_etag = src->second.etag;
    copy.etag = src->second.etag.substr(0, 30) + "-2";  // a multipart ETag: not an MD5
  }
  dest[p.dest_key] = copy;
  return copy.etag;
}

void FakeStore::copy(s3::CopyParams p, std::uint64_t /*size*/, Callback<std::string> cb) {
  ++started["copy"];
  later([this, p = std::move(p), cb = std::move(cb)] {
    if (auto e = injected("copy", Side::Dest, p.dest_key)) return cb(tl::unexpected(*e));
    cb(copy_now(p, false));
  });
}

void FakeStore::multipart_copy(s3::CopyParams p, std::uint64_t, std::uint64_t, Callback<std::string> cb) {
  ++started["multipart_copy"];
  later([this, p = std::move(p), cb = std::move(cb)] {
    if (auto e = injected("multipart_copy", Side::Dest, p.dest_key)) return cb(tl::unexpected(*e));
    cb(copy_now(p, true));
  });
}

void FakeStore::restamp(const std::string& dest_key, const std::string& etag, Callback<std::string> cb) {
  ++started["restamp"];
  later([this, dest_key, etag, cb = std::move(cb)] {
    if (auto e = injected("restamp", Side::Dest, dest_key)) return cb(tl::unexpected(*e));
    auto it = dest.find(dest_key);
    if (it == dest.end()) return cb(tl::unexpected(not_found(dest_key)));
    if (!s3::etag_equal(it->second.etag, etag)) return cb(tl::unexpected(precondition(dest_key)));
    it->second.last_modified = now;
    cb(it->second.etag);
  });
}

// As the real one holds the bytes: two copies of each part (or of the whole
// object) from its read to its write's answer, one part at a time here.
void FakeStore::stream_copy(s3::CopyParams p, std::uint64_t size, std::uint64_t part_size, ByteBudget& budget,
                            Callback<std::string> cb) {
  ++started["stream_copy"];
  const std::uint64_t held = 2 * std::min(size, part_size);
  budget.acquire(held, [this, p = std::move(p), size, part_size, held, &budget, cb = std::move(cb)]() mutable {
    stream_peak = std::max(stream_peak, budget.held());
    later([this, p = std::move(p), size, part_size, held, &budget, cb = std::move(cb)] {
      budget.release(held);
      if (auto e = injected("stream_copy", Side::Dest, p.dest_key)) return cb(tl::unexpected(*e));
      cb(copy_now(p, size > part_size));
    });
  });
}

void FakeStore::erase_legacy(const s3::ObjectVersion& o) {
  if (rows != nullptr && rows->references(o.key))
    violations.push_back("deleted " + o.key + " while a row references it");
  auto it = legacy.find(o.key);
  if (!o.version_id.empty()) {
    versions_deleted.push_back(o.key + "?versionId=" + o.version_id);
    if (it == legacy.end() || it->second.version_id != o.version_id) return;  // a noncurrent version
  }
  if (it != legacy.end()) legacy.erase(it);
}

void FakeStore::delete_objects(const std::vector<s3::ObjectVersion>& objects, Callback<s3::DeleteResult> cb) {
  ++started["delete_objects"];
  later([this, objects, cb = std::move(cb)] {
    if (auto e = injected("delete_objects", Side::Legacy, objects.empty() ? "" : objects.front().key))
      return cb(tl::unexpected(*e));
    s3::DeleteResult r;
    for (const auto& o : objects) {
      if (auto code = delete_key_error ? delete_key_error(o.key) : std::nullopt) {
        r.failed.push_back({o.key, *code, "injected"});
        continue;
      }
      erase_legacy(o);
    }
    cb(std::move(r));
  });
}

void FakeStore::delete_object(const s3::ObjectVersion& object, Callback<bool> cb) {
  ++started["delete_object"];
  later([this, object, cb = std::move(cb)] {
    if (auto e = injected("delete_object", Side::Legacy, object.key)) return cb(tl::unexpected(*e));
    erase_legacy(object);
    cb(true);
  });
}

bool FakeRows::references(const std::string& path) const {
  for (const auto& [id, p] : rows)
    if (p && *p == path) return true;
  return false;
}

Result<engine::RowStore::Bounds> FakeRows::id_bounds() {
  if (rows.empty()) return Bounds{};
  return Bounds{std::pair{rows.begin()->first, rows.rbegin()->first}};
}

Result<std::vector<db::Row>> FakeRows::scan(std::int64_t after, std::int64_t upto, const std::string& prefix, int limit,
                                            const Shard& shard) {
  std::vector<db::Row> out;
  for (auto it = rows.upper_bound(after); it != rows.end() && it->first <= upto; ++it) {
    if (!it->second || !starts_with(*it->second, prefix)) continue;
    if (!shard.owns(std::string_view(*it->second).substr(prefix.size()))) continue;
    out.push_back({it->first, it->second});
    if (out.size() == static_cast<std::size_t>(limit)) break;
  }
  return out;
}

Result<std::vector<db::Row>> FakeRows::page(std::int64_t after, int limit) {
  std::vector<db::Row> out;
  for (auto it = rows.upper_bound(after); it != rows.end(); ++it) {
    out.push_back({it->first, it->second});
    if (out.size() == static_cast<std::size_t>(limit)) break;
  }
  return out;
}

void FakeRows::compare_and_set(std::vector<db::CasItem> items, std::function<void(Result<Ids>)> done) {
  statement_rows.push_back(items.size());
  auto answer = [this, items = std::move(items), done = std::move(done)] {
    ++statements;
    if (before_cas) {
      if (auto e = before_cas(items)) return done(tl::unexpected(*e));
    }
    Ids updated;
    for (const auto& c : items) {
      auto it = rows.find(c.id);
      if (it == rows.end() || it->second != c.expected_path) continue;
      const std::string key = c.new_path;
      if (store_.dest.count(key) == 0U)
        violations.push_back("row " + std::to_string(c.id) + " pointed at missing " + key);
      it->second = c.new_path;
      updated.push_back(c.id);
    }
    done(std::move(updated));
  };
  if (latency.count() == 0)
    answer();  // as the real one answers at first: synchronously
  else
    loop_.call_after(latency, std::move(answer));
}

void StateCheck::operator()(const engine::Item& item, engine::State from, engine::State to) {
  const auto it = last_.find(item.legacy_key);
  const engine::State was = it == last_.end() ? engine::State::Listed : it->second;
  if (was != from)
    bad_.push_back(fmt::format("{}: moved from {} but was {}", item.legacy_key, to_string(from), to_string(was)));
  if (!engine::allowed(from, to))
    bad_.push_back(fmt::format("{}: {} -> {} is no arrow", item.legacy_key, to_string(from), to_string(to)));
  last_[item.legacy_key] = to;
}

std::vector<std::string> StateCheck::violations() const {
  auto v = bad_;
  for (const auto& [key, s] : last_)
    if (!engine::terminal(s)) v.push_back(fmt::format("{}: ended {}", key, to_string(s)));
  return v;
}

std::map<engine::State, int> StateCheck::ended() const {
  std::map<engine::State, int> n;
  for (const auto& [key, s] : last_) ++n[s];
  return n;
}

}  // namespace assetmv::testing

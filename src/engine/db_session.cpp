#include "engine/db_session.hpp"

#include <fmt/format.h>

namespace assetmv::engine {

Result<void> DbSession::connect() {
  table_.reset();
  conn_.reset();
  auto c = db::Connection::open(conninfo_, options_);
  if (!c) return tl::unexpected(c.error());
  conn_ = std::make_unique<db::Connection>(std::move(*c));
  table_ = std::make_unique<db::PathTable>(*conn_, ref_);
  return {};
}

std::optional<std::chrono::milliseconds> DbSession::retry_delay(std::string_view what, const Error& e, int failures) {
  const auto delay = policy_.next_delay(failures, e.kind, jitter_());
  if (delay)
    logging::warn("db.retry", fmt::format("{} failed, retrying in {} ms: {}", what, delay->count(), e.describe()),
                  {{"kind", to_string(e.kind)}});
  return delay;
}

struct DbRows::Pending {
  std::vector<db::CasItem> items;
  std::function<void(Result<Ids>)> done;
  int failures = 0;
};

DbRows::~DbRows() {
  for (auto t : timers_) loop_.cancel(t);
}

Result<RowStore::Bounds> DbRows::id_bounds() {
  return db_.run("reading the id range", [](db::PathTable& t) { return t.id_bounds(); });
}

Result<std::vector<db::Row>> DbRows::scan(std::int64_t after, std::int64_t upto, const std::string& prefix, int limit,
                                          const Shard& shard) {
  return db_.run("scanning rows", [&](db::PathTable& t) { return t.scan(after, upto, prefix, limit, shard); });
}

Result<std::vector<db::Row>> DbRows::page(std::int64_t after, int limit) {
  return db_.run("scanning rows", [&](db::PathTable& t) { return t.page(after, limit); });
}

void DbRows::compare_and_set(std::vector<db::CasItem> items, std::function<void(Result<Ids>)> done) {
  auto p = std::make_shared<Pending>();
  p->items = std::move(items);
  p->done = std::move(done);
  try_cas(std::move(p));
}

void DbRows::try_cas(std::shared_ptr<Pending> p) {
  auto r = db_.attempt([&](db::PathTable& t) { return t.compare_and_set(p->items); });
  if (r) return p->done(std::move(r));
  const auto delay = db_.retry_delay("compare-and-set", r.error(), ++p->failures);
  if (!delay) return p->done(std::move(r));
  auto id = std::make_shared<EventLoop::TimerId>(0);
  *id = loop_.call_after(*delay, [this, p, id] {
    std::erase(timers_, *id);
    try_cas(p);
  });
  timers_.push_back(*id);
}

}  // namespace assetmv::engine

#include "engine/db_session.hpp"

#include <fmt/format.h>

#include "core/log.hpp"

namespace assetmv::engine {

namespace {

constexpr std::chrono::milliseconds kConnectPause{250};  // times the attempt: 250 ms, then 500 ms

}  // namespace

struct DbSession::Try {
  std::string what;
  db::Statement statement;
  std::function<void(Result<db::Rows>)> done;
  int failures = 0;
  std::chrono::steady_clock::time_point sent{};
};

DbSession::DbSession(EventLoop& loop, std::string conninfo, db::TableRef ref, RetryPolicy policy,
                     db::ConnectOptions options)
    : loop_(loop),
      conn_(loop, std::move(conninfo), options),
      exec_(loop, conn_),
      table_(exec_, std::move(ref)),
      backoff_(loop, policy) {}

Result<void> DbSession::connect_once() {
  std::optional<Result<void>> out;
  conn_.connect([&out](Result<void> r) { out = std::move(r); });
  if (auto w = loop_.run_until("a connection to PostgreSQL", [&out] { return out.has_value(); }); !w) return w;
  return *out;
}

Result<void> DbSession::connect() {
  for (int attempt = 1;; ++attempt) {
    auto r = connect_once();
    if (r || !r.error().retryable() || attempt == kConnectAttempts) return r;
    logging::warn("preflight.db_retry", "connecting to PostgreSQL failed, trying again: " + r.error().describe());
    bool slept = false;
    backoff_.wait(
        kConnectPause * attempt, [&slept] { slept = true; }, [&slept](const Error&) { slept = true; });
    if (auto w = loop_.run_until("a pause before connecting again", [&slept] { return slept; }); !w) return w;
  }
}

bool DbSession::pause_before_retry(std::string_view what, const Error& e, int failures) {
  const auto delay = backoff_.stopped() ? std::nullopt : backoff_.delay(failures, e.kind);
  if (!delay) return false;
  logging::warn("db.retry", fmt::format("{} failed, retrying in {} ms: {}", what, delay->count(), e.describe()),
                {{"kind", to_string(e.kind)}});
  std::optional<bool> again;
  backoff_.wait(
      *delay, [&again] { again = true; }, [&again](const Error&) { again = false; });
  if (auto w = loop_.run_until("a database retry's backoff", [&again] { return again.has_value(); }); !w) return false;
  return *again;
}

void DbSession::send(std::string what, db::Statement statement, std::function<void(Result<db::Rows>)> done) {
  auto t = std::make_shared<Try>();
  t->what = std::move(what);
  t->statement = std::move(statement);
  t->done = std::move(done);
  attempt(std::move(t));
}

void DbSession::attempt(std::shared_ptr<Try> t) {
  if (backoff_.stopped()) {
    loop_.post([t, e = Error{ErrorKind::Interrupted, "Interrupted",
                             fmt::format("{}: not sent: {}", t->what, backoff_.why_stopped()), 0}] {
      t->done(tl::unexpected(e));
    });
    return;
  }
  if (!conn_.connected()) {
    waiting_for_connection_.push_back(std::move(t));
    if (!conn_.connecting()) connect_async();
    return;
  }
  t->sent = std::chrono::steady_clock::now();
  conn_.send(t->statement, [this, t](Result<db::Rows> r) { answered(t, std::move(r)); });
}

void DbSession::connect_async() {
  conn_.connect([this](Result<void> r) {
    auto waiting = std::move(waiting_for_connection_);
    waiting_for_connection_.clear();
    for (auto& t : waiting) {
      if (r) {
        attempt(std::move(t));
      } else {
        answered(t, tl::unexpected(r.error()));
      }
    }
  });
}

void DbSession::answered(const std::shared_ptr<Try>& t, Result<db::Rows> r) {
  if (t->sent != std::chrono::steady_clock::time_point{})
    statement_latency_.observe(std::chrono::steady_clock::now() - t->sent);
  t->sent = {};
  if (r) return t->done(std::move(r));
  Error e = r.error();
  if (backoff_.stopped()) {
    // Cancelled by the stop, or failed after it: nothing of it committed.
    return t->done(fail(ErrorKind::Interrupted, "Interrupted",
                        fmt::format("{}: given up: {} ({})", t->what, backoff_.why_stopped(), e.describe())));
  }
  const auto waited = backoff_.retry(
      e, ++t->failures, [this, t] { attempt(t); },
      [t, failures = t->failures](Error last) {
        if (last.kind != ErrorKind::Interrupted && failures > 1)
          last.message += fmt::format(" (after {} attempts)", failures);
        t->done(tl::unexpected(std::move(last)));
      });
  if (waited)
    logging::warn("db.retry", fmt::format("{} failed, retrying in {} ms: {}", t->what, waited->count(), e.describe()),
                  {{"kind", to_string(e.kind)}});
}

void DbSession::stop(const std::string& why) {
  if (backoff_.stopped()) return;
  backoff_.stop(why);  // the retries waiting are given up, Interrupted
  conn_.cancel();      // what is running is asked to stop
  auto waiting = std::move(waiting_for_connection_);
  waiting_for_connection_.clear();
  for (auto& t : waiting) attempt(std::move(t));  // each answers Interrupted
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
  db_.send("compare-and-set", db_.table().compare_and_set_statement(items),
           [done = std::move(done)](Result<db::Rows> r) {
             if (!r) return done(tl::unexpected(r.error()));
             done(db::PathTable::updated_ids(*r));
           });
}

}  // namespace assetmv::engine

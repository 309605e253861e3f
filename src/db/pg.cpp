#include "db/pg.hpp"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>

#include "core/log.hpp"

namespace assetmv::db {

namespace {

struct ConninfoDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};

}  // namespace

std::string first_line(const char* msg) {
  std::string s = msg != nullptr ? msg : "";
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

ConnectParams connect_params(const std::string& conninfo, const ConnectOptions& options) {
  ConnectParams p;
  p.keys = {"fallback_application_name", "client_encoding"};
  p.values = {"assetmv", "UTF8"};
  p.timeout = std::to_string(options.default_connect_timeout_s);
  if (std::getenv("PGCONNECT_TIMEOUT") == nullptr) {  // NOLINT(concurrency-mt-unsafe): read at startup
    p.keys.push_back("connect_timeout");
    p.values.push_back(p.timeout.c_str());
  }
  p.keys.push_back("dbname");  // expand_dbname: a conninfo or URI here is parsed, its keys override ours
  p.values.push_back(conninfo.c_str());
  p.keys.push_back(nullptr);
  p.values.push_back(nullptr);
  return p;
}

Error connect_error(PGconn* conn, const std::string& description) {
  const std::string msg = first_line(conn != nullptr ? PQerrorMessage(conn) : "out of memory");
  const bool auth = msg.find("authentication") != std::string::npos || msg.find("password") != std::string::npos ||
                    msg.find("role") != std::string::npos;
  const bool no_db = msg.find("does not exist") != std::string::npos;
  // TLS set up wrong (no root certificate where PGSSLROOTCERT or
  // ~/.postgresql/root.crt says, a server certificate that does not verify
  // or name the host, a server without TLS where it is required): no retry
  // cures it.
  const bool tls = msg.find("certificate") != std::string::npos || msg.find("sslmode") != std::string::npos ||
                   msg.find("does not support SSL") != std::string::npos;
  ErrorKind kind = ErrorKind::Retryable;  // refused, reset, timed out, not resolved: may come back
  if (auth) {
    kind = ErrorKind::AccessDenied;
  } else if (tls) {
    kind = ErrorKind::Fatal;
  } else if (no_db) {
    kind = ErrorKind::NotFound;
  }
  return Error{kind, "ConnectionFailed", fmt::format("cannot connect to PostgreSQL {}: {}", description, msg), 0};
}

Error statement_error(PGconn* conn, const PGresult* res, std::string_view sql, const std::string& description) {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const bool bad = conn == nullptr || PQstatus(conn) != CONNECTION_OK;
  std::string msg = first_line(res != nullptr ? PQresultErrorMessage(res) : "");
  if (msg.empty() && conn != nullptr) msg = first_line(PQerrorMessage(conn));
  auto verb = sql.substr(0, sql.find(' '));
  Error e;
  e.code = state != nullptr ? state : (bad ? "connection" : "");
  e.kind = classify_pg(state != nullptr ? state : "", bad);
  e.message = fmt::format("{} on {}: {}", verb, description, msg);
  return e;
}

Statement session_settings(const ConnectOptions& options) {
  return {"SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)",
          {std::to_string(options.lock_timeout_ms), std::to_string(options.statement_timeout_ms)}};
}

int connect_timeout_s(PGconn* conn, const ConnectOptions& options) {
  int seconds = options.default_connect_timeout_s;
  std::unique_ptr<PQconninfoOption, ConninfoDeleter> opts(PQconninfo(conn));
  for (auto* o = opts.get(); o != nullptr && o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) != "connect_timeout" || o->val == nullptr || *o->val == '\0') continue;
    int v = 0;
    const std::string_view text(o->val);
    if (std::from_chars(text.data(), text.data() + text.size(), v).ec == std::errc() && v > 0) seconds = v;
  }
  return seconds;
}

std::int64_t Rows::get_int(int row, int col) const {
  auto v = get(row, col);
  std::int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

std::string describe_conninfo(const std::string& conninfo) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoDeleter> opts(PQconninfoParse(conninfo.c_str(), &err));
  if (err != nullptr) PQfreemem(err);
  if (!opts) return "(unparsable connection string)";
  std::string host, port, db, user;
  for (auto* o = opts.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view k = o->keyword;
    if (k == "host" || k == "hostaddr")
      host = o->val;
    else if (k == "port")
      port = o->val;
    else if (k == "dbname")
      db = o->val;
    else if (k == "user")
      user = o->val;
  }
  const auto env = [](const char* name, const char* fallback) {
    const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): startup only
    return std::string(v != nullptr && *v != '\0' ? v : fallback);
  };
  if (host.empty()) host = env("PGHOST", "localhost");
  if (port.empty()) port = env("PGPORT", "5432");
  if (user.empty()) user = env("PGUSER", "");
  if (db.empty()) db = env("PGDATABASE", user.c_str());
  return fmt::format("{}{}{}:{}/{}", user, user.empty() ? "" : "@", host, port, db);
}

std::string mask_passwords(std::string_view text) {
  std::string out(text);
  const auto mask = [&out](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to && i < out.size(); ++i) out[i] = '*';
  };
  // conninfo: password = value | password='quoted \' value'; URI query: password=value
  for (std::size_t at = 0; (at = out.find("password", at)) != std::string::npos;) {
    std::size_t i = at + 8;
    while (i < out.size() && out[i] == ' ') ++i;
    if (i >= out.size() || out[i] != '=') {
      at = i;
      continue;
    }
    ++i;
    while (i < out.size() && out[i] == ' ') ++i;
    std::size_t end = i;
    if (end < out.size() && out[end] == '\'') {
      for (++end; end < out.size() && out[end] != '\''; ++end)
        if (out[end] == '\\') ++end;
      mask(i + 1, end);
    } else {
      while (end < out.size() && out[end] != ' ' && out[end] != '&') ++end;
      mask(i, end);
    }
    at = end;
  }
  // URI: scheme://user:password@host
  if (const auto scheme = out.find("://"); scheme != std::string::npos) {
    const auto start = scheme + 3;
    const auto at = out.find('@', start);
    const auto slash = out.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const auto colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) mask(colon + 1, at);
    }
  }
  return out;
}

void quiet_notices(PGconn* conn) {
  // Server notices ("relation already exists, skipping") go to the debug log,
  // not raw onto stderr where they would break the structured output.
  PQsetNoticeProcessor(
      conn, [](void*, const char* message) { logging::debug("db.notice", first_line(message)); }, nullptr);
}

Result<Connection> Connection::open(const std::string& conninfo, const ConnectOptions& options) {
  Connection c;
  c.description_ = describe_conninfo(conninfo);
  c.answer_timeout_ms_ = std::max(options.answer_timeout_ms, options.lock_timeout_ms + 1'000);
  const auto params = connect_params(conninfo, options);
  c.conn_.reset(PQconnectdbParams(params.keys.data(), params.values.data(), 1));
  if (!c.conn_) return fail(ErrorKind::Fatal, "OutOfMemory", "libpq could not allocate a connection");
  if (PQstatus(c.conn_.get()) != CONNECTION_OK) return tl::unexpected(connect_error(c.conn_.get(), c.description_));
  quiet_notices(c.conn_.get());
  auto set = c.exec(session_settings(options));
  if (!set) return tl::unexpected(set.error());
  return c;
}

std::string Connection::host() const {
  const char* h = conn_ ? PQhost(conn_.get()) : nullptr;
  return h != nullptr ? h : "";
}

bool Connection::await_answer() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(answer_timeout_ms_);
  while (PQisBusy(conn_.get()) != 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{PQsocket(conn_.get()), POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno != EINTR) return true;  // PQgetResult reports the broken connection
    if (n > 0 && PQconsumeInput(conn_.get()) == 0) return true;
  }
  return true;
}

Result<Rows> Connection::exec(const std::string& sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  const int sent = params.empty() ? PQsendQuery(conn_.get(), sql.c_str())
                                  : PQsendQueryParams(conn_.get(), sql.c_str(), static_cast<int>(params.size()),
                                                      nullptr, values.data(), nullptr, nullptr, 0);
  if (sent == 0) return tl::unexpected(statement_error(conn_.get(), nullptr, sql, description_));
  if (!await_answer()) {
    conn_.reset();  // the session's state is unknown: never reuse it
    return fail(ErrorKind::Retryable, "NoAnswer",
                fmt::format("{} on {}: no answer within {} ms; connection dropped",
                            std::string_view(sql).substr(0, sql.find(' ')), description_, answer_timeout_ms_));
  }
  // As PQexec: the last result, unless one of them is an error.
  Rows rows(nullptr);
  std::unique_ptr<PGresult, ResultDeleter> failed;
  while (PGresult* r = PQgetResult(conn_.get())) {
    const auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !failed)
      failed.reset(r);
    else
      rows = Rows(r);
  }
  if (failed) return tl::unexpected(statement_error(conn_.get(), failed.get(), sql, description_));
  if (!rows.has_result()) return tl::unexpected(statement_error(conn_.get(), nullptr, sql, description_));
  return rows;
}

Result<std::uint64_t> Connection::copy_in(const std::string& copy_sql, const std::function<bool(std::string&)>& next) {
  std::unique_ptr<PGresult, ResultDeleter> start(PQexec(conn_.get(), copy_sql.c_str()));
  if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN)
    return tl::unexpected(statement_error(conn_.get(), start.get(), copy_sql, description_));
  std::string chunk;
  bool more = true;
  while (more) {
    chunk.clear();
    more = next(chunk);
    if (!chunk.empty() && PQputCopyData(conn_.get(), chunk.data(), static_cast<int>(chunk.size())) != 1) break;
  }
  // On a failed PQputCopyData the end and the result below carry the error.
  PQputCopyEnd(conn_.get(), nullptr);
  std::unique_ptr<PGresult, ResultDeleter> done(PQgetResult(conn_.get()));
  while (PGresult* extra = PQgetResult(conn_.get())) PQclear(extra);
  if (!done || PQresultStatus(done.get()) != PGRES_COMMAND_OK)
    return tl::unexpected(statement_error(conn_.get(), done.get(), copy_sql, description_));
  std::uint64_t n = 0;
  const std::string_view tuples = PQcmdTuples(done.get());
  std::from_chars(tuples.data(), tuples.data() + tuples.size(), n);
  return n;
}

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string int8_array(const std::vector<std::int64_t>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(items[i]);
  }
  out += '}';
  return out;
}

std::string copy_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace assetmv::db

// PostgreSQL access over libpq with RAII handles and errors as values.
// A connection string may be a libpq conninfo ("host=... dbname=...") or a
// postgres:// URI; libpq itself applies the PG* environment variables and
// ~/.pgpass, so the tool follows the same conventions as psql.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace assetmv::db {

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};

// A query result; column values are views into libpq's memory, valid while
// the Rows object lives.
class Rows {
 public:
  Rows() = default;
  explicit Rows(PGresult* r) : res_(r) {}
  int count() const { return res_ ? PQntuples(res_.get()) : 0; }
  bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  std::string_view get(int row, int col) const {
    return {PQgetvalue(res_.get(), row, col), static_cast<std::size_t>(PQgetlength(res_.get(), row, col))};
  }
  std::int64_t get_int(int row, int col) const;
  std::optional<std::string> get_opt(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return std::string(get(row, col));
  }
  bool has_result() const { return res_ != nullptr; }

 private:
  std::unique_ptr<PGresult, ResultDeleter> res_;
};

using Param = std::optional<std::string>;  // nullopt is SQL NULL

// One statement and its parameters ($1, $2...), as built for the table.
struct Statement {
  std::string sql;
  std::vector<Param> params;
};

// Runs one statement and returns its answer (the last result, or the first
// error): a blocking Connection, or a LoopExecutor (async.hpp) that waits
// for an AsyncConnection on the event loop.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual Result<Rows> exec(const std::string& sql, const std::vector<Param>& params = {}) = 0;
  Result<Rows> exec(const Statement& s) { return exec(s.sql, s.params); }
  // user@host:port/dbname: safe for logs.
  virtual const std::string& describe() const = 0;
};

struct ConnectOptions {
  // Set on the session after connecting; a locked row or a stuck statement
  // then fails (and is retried) instead of hanging the run.
  int lock_timeout_ms = 5'000;
  int statement_timeout_ms = 120'000;
  int default_connect_timeout_s = 10;  // used when neither the conninfo nor PGCONNECT_TIMEOUT sets one
  // No answer at all within this long: the server or the network is gone
  // (statement_timeout cannot fire if its answer cannot reach us), so the
  // connection is dropped and the statement fails as retryable. Longer than
  // lock_timeout, so that a lock wait ends as the server's own 55P03.
  int answer_timeout_ms = 30'000;
};

// A blocking connection, for the seeder and the tests: the migration's own
// statements go through an AsyncConnection on the event loop (async.hpp).
class Connection final : public Executor {
 public:
  // Connects; the error message names host, port, database and user, never the password.
  static Result<Connection> open(const std::string& conninfo, const ConnectOptions& options = {});

  using Executor::exec;
  Result<Rows> exec(const std::string& sql, const std::vector<Param>& params = {}) override;
  // COPY ... FROM STDIN: `next` fills a chunk of COPY text and returns false when done.
  Result<std::uint64_t> copy_in(const std::string& copy_sql, const std::function<bool(std::string&)>& next);

  bool ok() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }
  const std::string& describe() const override { return description_; }
  // The server's host as connected: a name, an address, or a Unix socket's
  // directory (starting with '/').
  std::string host() const;

 private:
  // Waits for the statement's whole answer, up to answer_timeout_ms.
  bool await_answer();

  std::unique_ptr<PGconn, ConnDeleter> conn_;
  std::string description_;
  int answer_timeout_ms_ = 30'000;
};

// What both connections share. The keywords and values of a connection to
// `conninfo` with our defaults first (the user's string overrides them):
// application name, client encoding, connect_timeout.
struct ConnectParams {
  std::vector<const char*> keys;
  std::vector<const char*> values;
  std::string timeout;  // owns the connect_timeout value pointed at
};
ConnectParams connect_params(const std::string& conninfo, const ConnectOptions& options);
// A failed connection's error: a refused or unreachable server is
// Retryable, bad credentials AccessDenied, a missing database NotFound.
Error connect_error(PGconn* conn, const std::string& description);
// A statement's error from its result (or the connection's message),
// classified by SQLSTATE; `sql`'s first word names it.
Error statement_error(PGconn* conn, const PGresult* res, std::string_view sql, const std::string& description);
// The session settings a connection gets before its first statement:
// lock_timeout and statement_timeout, one statement (pipeline mode takes no
// multi-statement string).
Statement session_settings(const ConnectOptions& options);
// The first line of a libpq message.
std::string first_line(const char* msg);
// Sends libpq's notices to the debug log.
void quiet_notices(PGconn* conn);
// The seconds a connect may take: the conninfo's connect_timeout, else
// PGCONNECT_TIMEOUT, else options.default_connect_timeout_s (libpq ignores
// it in non-blocking connects: the AsyncConnection keeps it itself).
int connect_timeout_s(PGconn* conn, const ConnectOptions& options);

// The same text with every password in it (conninfo `password=...`, quoted
// or not; URI `user:password@` and `?password=`) replaced by '*' of the same
// length, so the result can overwrite the original in place (argv).
std::string mask_passwords(std::string_view text);

// Quotes an identifier for SQL: "name" with embedded quotes doubled. Pure.
std::string quote_ident(std::string_view name);
// A Postgres text[] literal for use as a bound parameter ({"a","b\"c"}).
std::string text_array(const std::vector<std::string>& items);
std::string int8_array(const std::vector<std::int64_t>& items);
// Escapes one value for COPY's text format (backslash, tab, newline, CR).
std::string copy_escape(std::string_view value);
// user@host:port/dbname from a conninfo or URI; "(unparsable)" when libpq
// cannot parse it. The password never appears.
std::string describe_conninfo(const std::string& conninfo);

}  // namespace assetmv::db

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

class Connection {
 public:
  // Connects; the error message names host, port, database and user, never the password.
  static Result<Connection> open(const std::string& conninfo, const ConnectOptions& options = {});

  Result<Rows> exec(const std::string& sql, const std::vector<Param>& params = {});
  // COPY ... FROM STDIN: `next` fills a chunk of COPY text and returns false when done.
  Result<std::uint64_t> copy_in(const std::string& copy_sql, const std::function<bool(std::string&)>& next);

  bool ok() const { return conn_ && PQstatus(conn_.get()) == CONNECTION_OK; }
  // user@host:port/dbname: safe for logs.
  const std::string& describe() const { return description_; }

 private:
  Error error_from(PGresult* res, std::string_view sql) const;
  // Waits for the statement's whole answer, up to answer_timeout_ms.
  bool await_answer();

  std::unique_ptr<PGconn, ConnDeleter> conn_;
  std::string description_;
  int answer_timeout_ms_ = 30'000;
};

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

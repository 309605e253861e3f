// The table that holds object paths, addressed by configurable (and safely
// quoted) names, and the few statements the tool runs against it. Every
// statement reaches rows through the primary key: the table has no index on
// the path column, so a filter on path is only ever applied inside a bounded
// primary-key range, never as a scan of its own.
//
// Privileges (see docs/privileges.md): scans need SELECT on the table;
// compare_and_set needs UPDATE(path) and SELECT (its WHERE reads id and path).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/shard.hpp"
#include "db/pg.hpp"

namespace assetmv::db {

struct TableRef {
  std::optional<std::string> schema;
  std::string table;
  std::string id_column = "id";
  std::string path_column = "path";

  // "avatars", "app.avatars", or with quoted parts: "\"My Schema\".\"Avatars\"".
  static Result<TableRef> parse(std::string_view qualified, std::string id_column, std::string path_column);
  std::string sql_table() const;  // quoted, schema-qualified when a schema was given
  std::string sql_id() const { return quote_ident(id_column); }
  std::string sql_path() const { return quote_ident(path_column); }
  std::string display() const;  // unquoted, for messages
};

struct Row {
  std::int64_t id = 0;
  std::optional<std::string> path;
};

struct CasItem {
  std::int64_t id = 0;
  std::string expected_path;  // the path the row must still hold
  std::string new_path;
};

class PathTable {
 public:
  PathTable(Executor& conn, TableRef ref) : conn_(conn), ref_(std::move(ref)) {}

  // The table and both columns exist and have usable types.
  Result<void> check();
  // The session's role may read the table and, when need_update, update the
  // path column: checked up front so that a run fails before changing anything.
  Result<void> check_privileges(bool need_update);
  // Smallest and largest id, or nullopt for an empty table (two index probes).
  Result<std::optional<std::pair<std::int64_t, std::int64_t>>> id_bounds();
  // Rows with after < id <= upto whose path starts with prefix and whose name
  // (the path without the prefix) is in the shard, by id, at most limit of
  // them. An empty prefix matches every non-NULL path.
  Result<std::vector<Row>> scan(std::int64_t after, std::int64_t upto, const std::string& prefix, int limit,
                                const Shard& shard = {});
  // All rows with id > after, by id, at most limit (NULL paths included).
  Result<std::vector<Row>> page(std::int64_t after, int limit);
  // One statement: SET path = new_path WHERE id = id AND path = expected_path,
  // for every item. Returns the ids whose row was updated; the others had
  // changed under us (the live application's write wins).
  Result<std::vector<std::int64_t>> compare_and_set(const std::vector<CasItem>& items);
  // The same statement, and the ids its answer says were updated: for the
  // migration, which sends it on the event loop (an AsyncConnection).
  Statement compare_and_set_statement(const std::vector<CasItem>& items) const;
  static std::vector<std::int64_t> updated_ids(const Rows& answer);

  const TableRef& ref() const { return ref_; }
  Executor& connection() { return conn_; }

 private:
  Executor& conn_;
  TableRef ref_;
};

}  // namespace assetmv::db

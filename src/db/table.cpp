#include "db/table.hpp"

#include <fmt/format.h>

namespace assetmv::db {

namespace {

// Splits "a.b" on the first dot outside double quotes; unquotes each part.
Result<std::vector<std::string>> split_qualified(std::string_view s) {
  std::vector<std::string> parts(1);
  bool quoted = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < s.size() && s[i + 1] == '"') {
          parts.back() += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        parts.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '.') {
      parts.emplace_back();
    } else {
      // Unquoted identifiers fold to lower case, as PostgreSQL folds them.
      parts.back() += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  if (quoted) return fail(ErrorKind::Fatal, "BadTable", fmt::format("table name {} has an unclosed quote", s));
  for (const auto& p : parts) {
    if (p.empty()) return fail(ErrorKind::Fatal, "BadTable", fmt::format("table name '{}' has an empty part", s));
  }
  if (parts.size() > 2)
    return fail(ErrorKind::Fatal, "BadTable", fmt::format("table name '{}' has more than schema.table", s));
  return parts;
}

}  // namespace

Result<TableRef> TableRef::parse(std::string_view qualified, std::string id_column, std::string path_column) {
  auto parts = split_qualified(qualified);
  if (!parts) return tl::unexpected(parts.error());
  if (id_column.empty() || path_column.empty())
    return fail(ErrorKind::Fatal, "BadColumn", "the id and path column names must not be empty");
  if (id_column == path_column)
    return fail(ErrorKind::Fatal, "BadColumn", "the id and path columns must be different columns");
  TableRef ref;
  if (parts->size() == 2) {
    ref.schema = (*parts)[0];
    ref.table = (*parts)[1];
  } else {
    ref.table = (*parts)[0];
  }
  ref.id_column = std::move(id_column);
  ref.path_column = std::move(path_column);
  return ref;
}

std::string TableRef::sql_table() const {
  return schema ? quote_ident(*schema) + "." + quote_ident(table) : quote_ident(table);
}

std::string TableRef::display() const { return schema ? *schema + "." + table : table; }

Result<void> PathTable::check() {
  // to_regclass resolves the name like any query would (search_path included)
  // and yields NULL rather than an error when the table is missing.
  auto rel = conn_.exec("SELECT to_regclass($1)::oid", {ref_.sql_table()});
  if (!rel) return tl::unexpected(rel.error());
  if (rel->is_null(0, 0))
    return fail(ErrorKind::NotFound, "42P01",
                fmt::format("table {} does not exist (or is not visible)", ref_.display()));
  const std::string oid(rel->get(0, 0));
  auto cols = conn_.exec(
      "SELECT attname, format_type(atttypid, atttypmod), atttypid::regtype::text FROM pg_attribute "
      "WHERE attrelid = $1::oid AND attname = ANY($2::text[]) AND attnum > 0 AND NOT attisdropped",
      {oid, text_array({ref_.id_column, ref_.path_column})});
  if (!cols) return tl::unexpected(cols.error());
  std::optional<std::string> id_type, path_type;
  for (int r = 0; r < cols->count(); ++r) {
    const std::string name(cols->get(r, 0));
    if (name == ref_.id_column) id_type = std::string(cols->get(r, 2));
    if (name == ref_.path_column) path_type = std::string(cols->get(r, 2));
  }
  if (!id_type)
    return fail(ErrorKind::NotFound, "42703", fmt::format("table {} has no column {}", ref_.display(), ref_.id_column));
  if (!path_type)
    return fail(ErrorKind::NotFound, "42703",
                fmt::format("table {} has no column {}", ref_.display(), ref_.path_column));
  if (*id_type != "integer" && *id_type != "bigint" && *id_type != "smallint")
    return fail(ErrorKind::Fatal, "BadColumn",
                fmt::format("column {}.{} is {}, not an integer key", ref_.display(), ref_.id_column, *id_type));
  if (*path_type != "text" && *path_type != "character varying" && *path_type != "character")
    return fail(ErrorKind::Fatal, "BadColumn",
                fmt::format("column {}.{} is {}, not text", ref_.display(), ref_.path_column, *path_type));
  return {};
}

Result<std::optional<std::pair<std::int64_t, std::int64_t>>> PathTable::id_bounds() {
  // Two separate subqueries so each is a single probe at one end of the primary key index.
  auto r =
      conn_.exec(fmt::format("SELECT (SELECT {id} FROM {t} ORDER BY {id} ASC LIMIT 1), "
                             "(SELECT {id} FROM {t} ORDER BY {id} DESC LIMIT 1)",
                             fmt::arg("id", ref_.sql_id()), fmt::arg("t", ref_.sql_table())));
  if (!r) return tl::unexpected(r.error());
  if (r->is_null(0, 0)) return std::optional<std::pair<std::int64_t, std::int64_t>>{};
  return std::optional{std::pair{r->get_int(0, 0), r->get_int(0, 1)}};
}

Result<void> PathTable::check_privileges(bool need_update) {
  auto r =
      conn_.exec("SELECT has_table_privilege($1, 'SELECT'), has_column_privilege($1, $2, 'UPDATE'), current_user::text",
                 {ref_.sql_table(), ref_.path_column});
  if (!r) return tl::unexpected(r.error());
  const std::string user(r->get(0, 2));
  if (r->get(0, 0) != "t")
    return fail(ErrorKind::AccessDenied, "42501",
                fmt::format("role {} lacks SELECT on {} (see docs/privileges.md)", user, ref_.display()));
  if (need_update && r->get(0, 1) != "t")
    return fail(
        ErrorKind::AccessDenied, "42501",
        fmt::format("role {} lacks UPDATE({}) on {} (see docs/privileges.md)", user, ref_.path_column, ref_.display()));
  return {};
}

Result<std::vector<Row>> PathTable::scan(std::int64_t after, std::int64_t upto, const std::string& prefix, int limit,
                                         const Shard& shard) {
  // A shard's filter is Shard::of in SQL: the first 32 bits of the MD5 of the
  // name's UTF-8 bytes (whatever the database's encoding), modulo N. It is
  // applied inside the id range like the prefix, so each worker reads the
  // same pages but receives only its own rows.
  const auto sql = fmt::format(
      "SELECT {id}, {path} FROM {t} WHERE {id} > $1 AND {id} <= $2 AND starts_with({path}, $3){shard} ORDER BY {id} "
      "LIMIT $4",
      fmt::arg("id", ref_.sql_id()), fmt::arg("path", ref_.sql_path()), fmt::arg("t", ref_.sql_table()),
      fmt::arg("shard", shard.whole() ? ""
                                      : fmt::format(" AND mod(('x' || substr(md5(convert_to(substr({}, char_length($3) "
                                                    "+ 1), 'UTF8')), 1, 8))::bit(32)::bigint, $5) = $6",
                                                    ref_.sql_path())));
  std::vector<Param> params{std::to_string(after), std::to_string(upto), prefix, std::to_string(limit)};
  if (!shard.whole()) {
    params.push_back(std::to_string(shard.count));
    params.push_back(std::to_string(shard.index));
  }
  auto r = conn_.exec(sql, params);
  if (!r) return tl::unexpected(r.error());
  std::vector<Row> rows;
  rows.reserve(static_cast<std::size_t>(r->count()));
  for (int i = 0; i < r->count(); ++i) rows.push_back({r->get_int(i, 0), r->get_opt(i, 1)});
  return rows;
}

Result<std::vector<Row>> PathTable::page(std::int64_t after, int limit) {
  const auto sql =
      fmt::format("SELECT {id}, {path} FROM {t} WHERE {id} > $1 ORDER BY {id} LIMIT $2", fmt::arg("id", ref_.sql_id()),
                  fmt::arg("path", ref_.sql_path()), fmt::arg("t", ref_.sql_table()));
  auto r = conn_.exec(sql, {std::to_string(after), std::to_string(limit)});
  if (!r) return tl::unexpected(r.error());
  std::vector<Row> rows;
  rows.reserve(static_cast<std::size_t>(r->count()));
  for (int i = 0; i < r->count(); ++i) rows.push_back({r->get_int(i, 0), r->get_opt(i, 1)});
  return rows;
}

Statement PathTable::compare_and_set_statement(const std::vector<CasItem>& items) const {
  std::vector<std::int64_t> ids;
  std::vector<std::string> olds, news;
  ids.reserve(items.size());
  olds.reserve(items.size());
  news.reserve(items.size());
  for (const auto& it : items) {
    ids.push_back(it.id);
    olds.push_back(it.expected_path);
    news.push_back(it.new_path);
  }
  // One statement for the batch: the join on id uses the primary key, and the
  // path condition makes each row's update conditional on its old value.
  return {
      fmt::format("UPDATE {t} AS t SET {path} = v.new_path "
                  "FROM unnest($1::int8[], $2::text[], $3::text[]) AS v(id, old_path, new_path) "
                  "WHERE t.{id} = v.id AND t.{path} = v.old_path RETURNING t.{id}",
                  fmt::arg("id", ref_.sql_id()), fmt::arg("path", ref_.sql_path()), fmt::arg("t", ref_.sql_table())),
      {int8_array(ids), text_array(olds), text_array(news)}};
}

std::vector<std::int64_t> PathTable::updated_ids(const Rows& answer) {
  std::vector<std::int64_t> updated;
  updated.reserve(static_cast<std::size_t>(answer.count()));
  for (int i = 0; i < answer.count(); ++i) updated.push_back(answer.get_int(i, 0));
  return updated;
}

Result<std::vector<std::int64_t>> PathTable::compare_and_set(const std::vector<CasItem>& items) {
  if (items.empty()) return std::vector<std::int64_t>{};
  auto r = conn_.exec(compare_and_set_statement(items));
  if (!r) return tl::unexpected(r.error());
  return updated_ids(*r);
}

}  // namespace assetmv::db

// The database layer against a real PostgreSQL 15.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include "db/async.hpp"
#include "db/table.hpp"
#include "seed/seeder.hpp"
#include "services.hpp"

using namespace assetmv;
using namespace assetmv::db;
using namespace assetmv::itest;

namespace {

class Db : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = connect_db();
    ASSETMV_NEED(c.has_value(), "PostgreSQL (PG* variables)");
    conn.emplace(std::move(*c));
    schema = fmt::format("it_db_{}_{}", ::getpid(), counter++);
    ASSERT_TRUE(conn->exec(fmt::format("CREATE SCHEMA {}", quote_ident(schema))));
  }
  void TearDown() override {
    if (conn) conn->exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(schema)));
  }
  TableRef make_table(const std::string& table, const std::string& id, const std::string& path,
                      const std::vector<std::optional<std::string>>& paths) {
    auto ref = TableRef::parse(quote_ident(schema) + "." + quote_ident(table), id, path);
    EXPECT_TRUE(ref);
    EXPECT_TRUE(seed::create_exercise_table(*conn, *ref));
    for (const auto& p : paths) {
      EXPECT_TRUE(conn->exec(fmt::format("INSERT INTO {} ({}) VALUES ($1)", ref->sql_table(), ref->sql_path()), {p}));
    }
    return *ref;
  }
  std::optional<std::string> path_of(const TableRef& t, std::int64_t id) {
    auto r = conn->exec(fmt::format("SELECT {} FROM {} WHERE {} = $1", t.sql_path(), t.sql_table(), t.sql_id()),
                        {std::to_string(id)});
    return r && r->count() == 1 ? r->get_opt(0, 0) : std::nullopt;
  }
  std::optional<Connection> conn;
  std::string schema;
  static inline int counter = 0;
};

}  // namespace

TEST_F(Db, ExerciseSchemaIsCreatedExactlyAndChecked) {
  auto t = make_table("avatars", "id", "path", {});
  PathTable table(*conn, t);
  ASSERT_TRUE(table.check());
  auto cols = conn->exec(
      "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND "
      "table_name = 'avatars' ORDER BY ordinal_position",
      {schema});
  ASSERT_TRUE(cols);
  ASSERT_EQ(cols->count(), 2);
  EXPECT_EQ(cols->get(0, 0), "id");
  EXPECT_EQ(cols->get(0, 1), "integer");
  EXPECT_EQ(cols->get(1, 0), "path");
  EXPECT_EQ(cols->get(1, 1), "character varying");
  EXPECT_EQ(cols->get(1, 2), "YES");
  auto idx = conn->exec("SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'avatars'", {schema});
  EXPECT_EQ(idx->get(0, 0), "1");  // the primary key only: no index on path
}

TEST_F(Db, CheckReportsMissingTableAndColumnsClearly) {
  auto t = make_table("avatars", "id", "path", {});
  auto missing = TableRef::parse(quote_ident(schema) + ".nope", "id", "path");
  auto r = PathTable(*conn, *missing).check();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::NotFound);
  EXPECT_NE(r.error().message.find("does not exist"), std::string::npos);
  auto badcol = t;
  badcol.path_column = "url";
  auto c = PathTable(*conn, badcol).check();
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("has no column url"), std::string::npos);
  auto swapped = t;
  swapped.id_column = "path";
  swapped.path_column = "id";
  EXPECT_FALSE(PathTable(*conn, swapped).check());
}

TEST_F(Db, IdentifiersThatNeedQuotesWorkEverywhere) {
  auto t = make_table("Odd \"Table\"; x", "Key Col", "pa\"th", {"image/a.png", "avatar/b.png"});
  PathTable table(*conn, t);
  ASSERT_TRUE(table.check());
  auto rows = table.scan(0, 100, "image/", 10);
  ASSERT_TRUE(rows) << rows.error().describe();
  ASSERT_EQ(rows->size(), 1U);
  EXPECT_EQ(*(*rows)[0].path, "image/a.png");
  auto upd = table.compare_and_set({{(*rows)[0].id, "image/a.png", "avatar/a.png"}});
  ASSERT_TRUE(upd);
  EXPECT_EQ(upd->size(), 1U);
}

TEST_F(Db, KeysetScanFiltersByPrefixWithinIdRanges) {
  std::vector<std::optional<std::string>> paths;
  for (int i = 1; i <= 100; ++i) paths.push_back(fmt::format("{}/avatar-{}.png", i % 3 == 0 ? "avatar" : "image", i));
  paths.push_back(std::nullopt);
  paths.push_back(std::string());
  paths.push_back(std::string("image_x/like-wildcard.png"));  // '_' must not act as a LIKE wildcard
  paths.push_back(std::string("IMAGE/upper.png"));
  auto t = make_table("avatars", "id", "path", paths);
  PathTable table(*conn, t);
  auto bounds = table.id_bounds();
  ASSERT_TRUE(bounds);
  ASSERT_TRUE(bounds->has_value());
  EXPECT_EQ((*bounds)->first, 1);
  EXPECT_EQ((*bounds)->second, 104);
  std::vector<std::int64_t> ids;
  std::int64_t after = 0;
  for (;;) {
    auto rows = table.scan(after, 104, "image/", 10);
    ASSERT_TRUE(rows);
    if (rows->empty()) break;
    for (const auto& r : *rows) {
      EXPECT_TRUE(r.path->starts_with("image/"));
      ids.push_back(r.id);
    }
    after = rows->back().id;
  }
  EXPECT_EQ(ids.size(), 67U);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  auto range = table.scan(10, 20, "image/", 1000);
  for (const auto& r : *range) {
    EXPECT_GT(r.id, 10);
    EXPECT_LE(r.id, 20);
  }
  auto page = table.page(100, 10);
  ASSERT_EQ(page->size(), 4U);
  EXPECT_FALSE((*page)[0].path.has_value());
  EXPECT_EQ((*page)[1].path, "");
}

TEST_F(Db, CompareAndSetUpdatesOnlyRowsStillHoldingTheOldPath) {
  auto t = make_table("avatars", "id", "path", {"image/1.png", "image/2.png", "image/3.png", "image/1.png"});
  PathTable table(*conn, t);
  // The live application moves row 2 to a modern path of its own first.
  ASSERT_TRUE(conn->exec(fmt::format("UPDATE {} SET path = 'avatar/new-2.png' WHERE id = 2", t.sql_table())));
  auto upd = table.compare_and_set({{1, "image/1.png", "avatar/1.png"},
                                    {2, "image/2.png", "avatar/2.png"},
                                    {3, "image/3.png", "avatar/3.png"},
                                    {4, "image/1.png", "avatar/1.png"},
                                    {99, "image/99.png", "avatar/99.png"}});
  ASSERT_TRUE(upd) << upd.error().describe();
  std::vector<std::int64_t> got = *upd;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::int64_t>{1, 3, 4}));
  EXPECT_EQ(path_of(t, 2), "avatar/new-2.png");  // the live app's write won
  EXPECT_EQ(path_of(t, 1), "avatar/1.png");
  EXPECT_EQ(path_of(t, 4), "avatar/1.png");
  auto again = table.compare_and_set({{1, "image/1.png", "avatar/1.png"}});
  EXPECT_TRUE(again->empty());  // idempotent: a resumed run changes nothing twice
}

TEST_F(Db, CompareAndSetCarriesOddPathsIntact) {
  const std::vector<std::string> odd = {
      "image/q\"uote.png", "image/back\\slash.png", "image/comma,{brace}.png", "image/ünï 漢.png",
      "image/NULL",        "image/tab\t.png"};
  std::vector<std::optional<std::string>> paths(odd.begin(), odd.end());
  auto t = make_table("avatars", "id", "path", paths);
  PathTable table(*conn, t);
  std::vector<CasItem> items;
  for (std::size_t i = 0; i < odd.size(); ++i)
    items.push_back({static_cast<std::int64_t>(i + 1), odd[i], "avatar/" + odd[i].substr(6)});
  auto upd = table.compare_and_set(items);
  ASSERT_TRUE(upd) << upd.error().describe();
  EXPECT_EQ(upd->size(), odd.size());
  for (std::size_t i = 0; i < odd.size(); ++i)
    EXPECT_EQ(path_of(t, static_cast<std::int64_t>(i + 1)), "avatar/" + odd[i].substr(6));
}

TEST_F(Db, CopyInLoadsRowsInOrder) {
  auto t = make_table("avatars", "id", "path", {});
  int n = 0;
  auto copied =
      conn->copy_in(fmt::format("COPY {} ({}) FROM STDIN", t.sql_table(), t.sql_path()), [&](std::string& chunk) {
        while (n < 5000 && chunk.size() < 4096) chunk += copy_escape(fmt::format("image/a\\{}\t.png", n++)) + "\n";
        return n < 5000;
      });
  ASSERT_TRUE(copied) << copied.error().describe();
  EXPECT_EQ(*copied, 5000U);
  EXPECT_EQ(path_of(t, 5000), "image/a\\4999\t.png");
}

TEST_F(Db, LockHeldByAnotherSessionTimesOutAsRetryable) {
  auto t = make_table("avatars", "id", "path", {"image/1.png"});
  auto other = connect_db();
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->exec("BEGIN"));
  ASSERT_TRUE(other->exec(fmt::format("SELECT * FROM {} WHERE id = 1 FOR UPDATE", t.sql_table())));
  ConnectOptions fast;
  fast.lock_timeout_ms = 200;
  auto mine = Connection::open(env_or("ASSETMV_TEST_DB", ""), fast);
  ASSERT_TRUE(mine);
  PathTable table(*mine, t);
  auto r = table.compare_and_set({{1, "image/1.png", "avatar/1.png"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "55P03");
  EXPECT_EQ(r.error().kind, ErrorKind::Retryable);
  ASSERT_TRUE(other->exec("ROLLBACK"));
  EXPECT_TRUE(table.compare_and_set({{1, "image/1.png", "avatar/1.png"}}));
}

TEST_F(Db, AStatementWithNoAnswerIsAbandonedAndTheConnectionDropped) {
  // statement_timeout cannot help when the answer cannot reach us; the
  // client's own deadline does (here a sleeping server stands in for a
  // blackholed network).
  ConnectOptions fast;
  fast.lock_timeout_ms = 100;
  fast.answer_timeout_ms = 300;  // raised to lock_timeout + 1 s
  auto mine = Connection::open(env_or("ASSETMV_TEST_DB", ""), fast);
  ASSERT_TRUE(mine);
  const auto started = std::chrono::steady_clock::now();
  auto r = mine->exec("SELECT pg_sleep(30)");
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "NoAnswer");
  EXPECT_EQ(r.error().kind, ErrorKind::Retryable);
  EXPECT_FALSE(mine->ok());  // never reused: its state is unknown
  EXPECT_GE(took, std::chrono::milliseconds(1'000));
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST_F(Db, ConnectionErrorsNameTheServerButNotThePassword) {
  auto r = Connection::open("postgres://nobody:pa55w0rd-xyz@127.0.0.1:1/nodb?connect_timeout=2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::Retryable);
  EXPECT_NE(r.error().message.find("nobody@127.0.0.1:1/nodb"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("pa55w0rd"), std::string::npos);
  auto nodb =
      Connection::open(fmt::format("host={} port={} user={} dbname=no_such_db_assetmv", env_or("PGHOST", "127.0.0.1"),
                                   env_or("PGPORT", "5432"), env_or("PGUSER", "postgres")));
  ASSERT_FALSE(nodb);
  EXPECT_EQ(nodb.error().kind, ErrorKind::NotFound);
}

TEST_F(Db, UriAndConninfoFormsBothConnect) {
  const auto host = env_or("PGHOST", "127.0.0.1"), port = env_or("PGPORT", "5432"), user = env_or("PGUSER", "postgres"),
             db = env_or("PGDATABASE", "postgres");
  EXPECT_TRUE(Connection::open(fmt::format("postgres://{}@{}:{}/{}", user, host, port, db)));
  EXPECT_TRUE(Connection::open(fmt::format("host={} port={} user={} dbname={}", host, port, user, db)));
  EXPECT_TRUE(Connection::open(""));  // PG* variables alone
}

// The table scan filters a shard on the server: its SQL hash must place
// every name exactly where Shard::of does, odd names and a prefix with
// multi-byte characters included, or two workers would both move a name.
TEST_F(Db, AShardsScanReturnsExactlyTheNamesShardOfPlacesInIt) {
  const std::string prefix = "imäge/";  // char_length, not bytes, finds where the name starts
  std::vector<std::string> names = {"a.png", "ü/é.png", "emoji-\xf0\x9f\x98\x80.png", "sp ace%20.png",
                                    "x",     "",        "dir/sub/deep.png",           "\xe4\xb8\xad\xe6\x96\x87.png"};
  for (int i = 0; i < 400; ++i) names.push_back(fmt::format("avatar-{}.png", i));
  std::vector<std::optional<std::string>> paths;
  for (const auto& n : names) paths.emplace_back(prefix + n);
  paths.emplace_back("avatar/modern.png");
  auto t = make_table("avatars", "id", "path", paths);
  PathTable table(*conn, t);
  constexpr std::uint32_t kN = 4;
  std::multiset<std::string> seen;
  for (std::uint32_t k = 0; k < kN; ++k) {
    auto rows = table.scan(0, 100'000, prefix, 100'000, Shard{k, kN});
    ASSERT_TRUE(rows) << rows.error().describe();
    EXPECT_GT(rows->size(), 60U);
    for (const auto& r : *rows) {
      const std::string name = r.path->substr(prefix.size());
      EXPECT_EQ(Shard::of(name, kN), k) << name;
      seen.insert(name);
    }
  }
  EXPECT_EQ(seen, std::multiset<std::string>(names.begin(), names.end()));
}

// ---- the connection on the event loop --------------------------------------

namespace {

// An AsyncConnection and its loop, with a helper that waits for one answer.
struct OnLoop {
  EventLoop loop;
  AsyncConnection conn;
  explicit OnLoop(ConnectOptions o = {}) : conn(loop, env_or("ASSETMV_TEST_DB", ""), o) {}
  Result<void> connect() {
    std::optional<Result<void>> out;
    conn.connect([&](Result<void> r) { out = std::move(r); });
    if (auto w = loop.run_until("the connect", [&] { return out.has_value(); }); !w) return w;
    return *out;
  }
};

}  // namespace

TEST_F(Db, AsyncStatementsPipelineInOrderEachItsOwnTransaction) {
  auto t = make_table("avatars", "id", "path", {"image/1.png", "image/2.png"});
  OnLoop db;
  ASSERT_TRUE(db.connect());
  std::vector<std::string> order;
  std::vector<Result<Rows>> answers;
  const auto record = [&](std::string name) {
    return [&, name](Result<Rows> r) {
      order.push_back(name);
      answers.push_back(std::move(r));
    };
  };
  PathTable table(*conn, t);  // for the statement only
  db.conn.send(table.compare_and_set_statement({{1, "image/1.png", "avatar/1.png"}}), record("first"));
  db.conn.send({"SELECT 1/0", {}}, record("failing"));  // fails alone: the next one is its own transaction
  db.conn.send(table.compare_and_set_statement({{2, "image/2.png", "avatar/2.png"}}), record("third"));
  EXPECT_EQ(db.conn.in_flight(), 3U);  // all three on the wire at once
  ASSERT_TRUE(db.loop.run_until("three answers", [&] { return answers.size() == 3; }));
  EXPECT_EQ(order, (std::vector<std::string>{"first", "failing", "third"}));
  ASSERT_TRUE(answers[0]);
  EXPECT_EQ(PathTable::updated_ids(*answers[0]), (std::vector<std::int64_t>{1}));
  ASSERT_FALSE(answers[1]);
  EXPECT_EQ(answers[1].error().code, "22012");  // division_by_zero
  ASSERT_TRUE(answers[2]);
  EXPECT_EQ(path_of(t, 1), "avatar/1.png");
  EXPECT_EQ(path_of(t, 2), "avatar/2.png");
}

TEST_F(Db, AStatementWaitingOnALockLeavesTheLoopFreeAndALateAnswerIsAbandoned) {
  auto t = make_table("avatars", "id", "path", {"image/1.png"});
  auto other = connect_db();
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->exec("BEGIN"));
  ASSERT_TRUE(other->exec(fmt::format("SELECT * FROM {} WHERE id = 1 FOR UPDATE", t.sql_table())));
  ConnectOptions o;
  o.lock_timeout_ms = 1'500;
  OnLoop db(o);
  ASSERT_TRUE(db.connect());
  PathTable table(*conn, t);
  std::optional<Result<Rows>> cas;
  db.conn.send(table.compare_and_set_statement({{1, "image/1.png", "avatar/1.png"}}),
               [&](Result<Rows> r) { cas = std::move(r); });
  // The loop goes on serving timers while the statement waits on the lock.
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    if (!cas) db.loop.call_after(std::chrono::milliseconds(50), tick);
  };
  db.loop.call_after(std::chrono::milliseconds(50), tick);
  ASSERT_TRUE(db.loop.run_until("the locked statement", [&] { return cas.has_value(); }));
  EXPECT_GE(ticks, 20);  // 1.5 s of lock wait: the loop ran its timers all along
  ASSERT_FALSE(*cas);
  EXPECT_EQ(cas->error().code, "55P03");
  EXPECT_EQ(cas->error().kind, ErrorKind::Retryable);
  ASSERT_TRUE(other->exec("ROLLBACK"));

  // No answer at all (a sleeping server stands in for a blackhole).
  ConnectOptions fast;
  fast.lock_timeout_ms = 100;
  fast.answer_timeout_ms = 300;  // raised to lock_timeout + 1 s
  OnLoop quiet(fast);
  ASSERT_TRUE(quiet.connect());
  std::optional<Result<Rows>> slept;
  const auto started = std::chrono::steady_clock::now();
  quiet.conn.send({"SELECT pg_sleep(30)", {}}, [&](Result<Rows> r) { slept = std::move(r); });
  ASSERT_TRUE(quiet.loop.run_until("no answer", [&] { return slept.has_value(); }));
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(*slept);
  EXPECT_EQ(slept->error().code, "NoAnswer");
  EXPECT_EQ(slept->error().kind, ErrorKind::Retryable);
  EXPECT_FALSE(quiet.conn.connected());  // never reused: its state is unknown
  EXPECT_GE(took, std::chrono::milliseconds(1'000));
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST_F(Db, ACancelledStatementAnswersAtOnceAndAKilledConnectionFailsWhatItCarried) {
  OnLoop db;
  ASSERT_TRUE(db.connect());
  std::optional<Result<Rows>> slept;
  const auto started = std::chrono::steady_clock::now();
  db.conn.send({"SELECT pg_sleep(30)", {}}, [&](Result<Rows> r) { slept = std::move(r); });
  db.loop.call_after(std::chrono::milliseconds(200), [&] { db.conn.cancel(); });
  ASSERT_TRUE(db.loop.run_until("the cancelled statement", [&] { return slept.has_value(); }));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  ASSERT_FALSE(*slept);
  EXPECT_EQ(slept->error().code, "57014");  // query_canceled
  EXPECT_TRUE(db.conn.connected());         // a cancel leaves the connection usable

  auto pid = conn->exec("SELECT 1");
  ASSERT_TRUE(pid);
  std::optional<Result<Rows>> own_pid;
  db.conn.send({"SELECT pg_backend_pid()", {}}, [&](Result<Rows> r) { own_pid = std::move(r); });
  ASSERT_TRUE(db.loop.run_until("its pid", [&] { return own_pid.has_value(); }));
  ASSERT_TRUE(*own_pid);
  const std::string backend((*own_pid)->get(0, 0));
  std::optional<Result<Rows>> carried;
  db.conn.send({"SELECT pg_sleep(30)", {}}, [&](Result<Rows> r) { carried = std::move(r); });
  db.loop.call_after(std::chrono::milliseconds(200),
                     [&] { conn->exec("SELECT pg_terminate_backend($1::int)", {backend}); });
  ASSERT_TRUE(db.loop.run_until("the killed connection", [&] { return carried.has_value(); }));
  ASSERT_FALSE(*carried);
  EXPECT_EQ(carried->error().kind, ErrorKind::Retryable);
  EXPECT_FALSE(db.conn.connected());
  ASSERT_TRUE(db.connect());  // and it connects again
}

TEST_F(Db, AsyncConnectErrorsNameTheServerButNotThePasswordAndTimeOut) {
  EventLoop loop;
  AsyncConnection refused(loop, "postgres://nobody:pa55w0rd-xyz@127.0.0.1:1/nodb", {});
  std::optional<Result<void>> out;
  refused.connect([&](Result<void> r) { out = std::move(r); });
  ASSERT_TRUE(loop.run_until("the refusal", [&] { return out.has_value(); }));
  ASSERT_FALSE(*out);
  EXPECT_EQ(out->error().kind, ErrorKind::Retryable);
  EXPECT_NE(out->error().message.find("nobody@127.0.0.1:1/nodb"), std::string::npos) << out->error().message;
  EXPECT_EQ(out->error().message.find("pa55w0rd"), std::string::npos);
  // A server that never answers (a socket that listens and never speaks):
  // libpq keeps no connect_timeout in a non-blocking connect; the connection does.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  AsyncConnection silent(loop, fmt::format("host=127.0.0.1 port={} dbname=x connect_timeout=1", ntohs(addr.sin_port)),
                         {});
  out.reset();
  const auto started = std::chrono::steady_clock::now();
  silent.connect([&](Result<void> r) { out = std::move(r); });
  ASSERT_TRUE(loop.run_until("the timeout", [&] { return out.has_value(); }));
  const auto took = std::chrono::steady_clock::now() - started;
  ::close(listener);
  ASSERT_FALSE(*out);
  EXPECT_EQ(out->error().kind, ErrorKind::Retryable);
  EXPECT_NE(out->error().message.find("no answer within 1 s"), std::string::npos) << out->error().message;
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(4));
}

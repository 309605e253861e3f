// The database layer's pure helpers: identifier quoting, array and COPY encoding, table names.
#include <gtest/gtest.h>

#include "db/pg.hpp"
#include "db/table.hpp"

using namespace assetmv;
using namespace assetmv::db;

TEST(Quoting, IdentifiersAreAlwaysQuotedWithQuotesDoubled) {
  EXPECT_EQ(quote_ident("avatars"), "\"avatars\"");
  EXPECT_EQ(quote_ident("we\"ird"), "\"we\"\"ird\"");
  EXPECT_EQ(quote_ident("a; DROP TABLE x"), "\"a; DROP TABLE x\"");
}

TEST(Arrays, TextAndInt8Literals) {
  EXPECT_EQ(text_array({}), "{}");
  EXPECT_EQ(text_array({"a", "b c", "q\"uote", "back\\slash", "", "NULL"}),
            R"({"a","b c","q\"uote","back\\slash","","NULL"})");
  EXPECT_EQ(int8_array({1, -2, 9223372036854775807}), "{1,-2,9223372036854775807}");
}

TEST(Copy, TextFormatEscapes) {
  EXPECT_EQ(copy_escape("plain"), "plain");
  EXPECT_EQ(copy_escape("a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
}

TEST(Tables, ParseQualifiedAndQuotedNames) {
  auto t = TableRef::parse("avatars", "id", "path");
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->schema);
  EXPECT_EQ(t->sql_table(), "\"avatars\"");
  auto q = TableRef::parse("App.Avatars", "id", "path");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->sql_table(), "\"app\".\"avatars\"");  // unquoted names fold to lower case
  auto quoted = TableRef::parse(R"("My Schema"."Odd.""Name")", "ID col", "pa\"th");
  ASSERT_TRUE(quoted) << quoted.error().describe();
  EXPECT_EQ(*quoted->schema, "My Schema");
  EXPECT_EQ(quoted->table, "Odd.\"Name");
  EXPECT_EQ(quoted->sql_table(), R"("My Schema"."Odd.""Name")");
  EXPECT_EQ(quoted->sql_id(), "\"ID col\"");
  EXPECT_EQ(quoted->sql_path(), "\"pa\"\"th\"");
  EXPECT_EQ(quoted->display(), "My Schema.Odd.\"Name");
  for (const char* bad : {"", "a.", ".a", "a.b.c", "\"unclosed"})
    EXPECT_FALSE(TableRef::parse(bad, "id", "path")) << bad;
  EXPECT_FALSE(TableRef::parse("t", "", "path"));
  EXPECT_FALSE(TableRef::parse("t", "same", "same"));
}

TEST(Conninfo, DescribedWithoutPassword) {
  EXPECT_EQ(describe_conninfo("postgres://alice:s3cret@db.example:6543/app"), "alice@db.example:6543/app");
  EXPECT_EQ(describe_conninfo("host=h port=1 dbname=d user=u password=s3cret"), "u@h:1/d");
  EXPECT_EQ(describe_conninfo("host=h port=1 dbname=d user=u password=s3cret").find("s3cret"), std::string::npos);
  EXPECT_EQ(describe_conninfo("this is = not valid"), "(unparsable connection string)");
}

TEST(MaskPasswords, HidesEveryFormKeepingTheLength) {
  const std::pair<std::string, std::string> cases[] = {
      {"host=db password=hunter2 user=app", "host=db password=******* user=app"},
      {"password = 'a b\\'c' dbname=x", "password = '******' dbname=x"},
      {"postgres://app:s3cr%40t@db:5432/avatars", "postgres://app:********@db:5432/avatars"},
      {"postgresql://db/avatars?user=app&password=pw&sslmode=require",
       "postgresql://db/avatars?user=app&password=**&sslmode=require"},
      {"postgres://app@db/avatars", "postgres://app@db/avatars"},
      {"host=db dbname=password_store", "host=db dbname=password_store"},
      {"--table", "--table"},
  };
  for (const auto& [in, want] : cases) {
    const auto got = db::mask_passwords(in);
    EXPECT_EQ(got, want) << in;
    EXPECT_EQ(got.size(), in.size());
  }
}

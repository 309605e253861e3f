// The migration's per-object state machine, driven through the engine's seam
// by an in-process fake of the buckets and the table (tests/support/
// fake_world.hpp): every row of docs/design.md's action table, every arrow
// of its state machine, and a stop in each stage. The fakes check the
// invariant as the engine acts (a row only ever points at an existing
// object; a legacy object is deleted only when no row references it), and
// each test checks it again at the end. The real-service proof is the e2e
// suite.
#include "engine/migration.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "../support/fake_world.hpp"
#include "core/log.hpp"
#include "core/utc_time.hpp"
#include "engine/copier.hpp"
#include "engine/plan.hpp"

using namespace assetmv;
using namespace assetmv::engine;
using assetmv::testing::FakeRows;
using assetmv::testing::FakeStore;
using assetmv::testing::md5_etag;
using namespace std::chrono_literals;

namespace {

struct World {
  EventLoop loop;
  FakeStore store{loop};
  FakeRows rows{loop, store};
  MigrationOptions o;
  Hooks hooks;
  std::int64_t next_id = 1;

  struct Run {  // NOLINT(bugprone-exception-escape): a test fixture; a throw fails the test
    RunResult result;
    Counts counts;
    nlohmann::json items;
    std::map<State, int> ended;  // items by their last state
    Forecast forecast;           // a dry run's
    std::vector<std::string> kinds() const {
      std::vector<std::string> k;
      for (const auto& i : items) k.push_back(i.at("kind").get<std::string>());
      return k;
    }
  };

  World() {
    logging::init(logging::Format::Text, logging::Level::Error);  // the tests read counts, not lines
    o.legacy_prefix = "image/";
    o.dest_prefix = "avatar/";
    o.flush_interval = 2ms;
    o.multipart_threshold = 1'000'000;
    o.delete_retry.base = 1ms;
    o.delete_retry.throttled_base = 1ms;
    o.delete_retry.cap = 4ms;
    o.delete_retry.max_attempts = 4;
  }

  void legacy(const std::string& name, int content, std::uint64_t size = 100) {
    store.legacy["image/" + name] = {md5_etag(content), size, ""};
  }
  void dest(const std::string& name, int content, std::uint64_t size = 100) {
    store.dest["avatar/" + name] = {md5_etag(content), size, ""};
  }
  std::int64_t row(const std::string& path) {
    rows.rows[next_id] = path;
    return next_id++;
  }
  std::string path(std::int64_t id) { return rows.rows.at(id).value_or("NULL"); }
  // n legacy objects 000.png, 001.png, ... each with one row.
  void legacy_with_rows(int n) {
    for (int i = 0; i < n; ++i) {
      legacy(fmt::format("{:03}.png", i), i);
      row(fmt::format("image/{:03}.png", i));
    }
  }
  // Every `op` answered with this error (as after the client's retries).
  void fail_every(const std::string& op, const Error& e) {
    store.fail = [op, e](const std::string& asked, Side, const std::string&) -> std::optional<Error> {
      if (asked == op) return e;
      return std::nullopt;
    };
  }

  // Every run's items are checked on every move (StateCheck).
  Run run() {
    assetmv::testing::StateCheck states;
    Hooks h = hooks;
    h.on_transition = [&](const Item& i, State from, State to) { states(i, from, to); };
    Migration m(loop, store, rows, o, h);
    Run r;
    r.result = m.run();
    EXPECT_EQ(states.violations(), std::vector<std::string>{});
    r.ended = states.ended();
    r.forecast = m.forecast();
    r.counts = m.report().counts;
    r.items = m.report().items_json().at("items");
    return r;
  }

  // Every row points at an object that exists; nothing was ever done out of order.
  void expect_invariant() {
    EXPECT_EQ(store.violations, std::vector<std::string>{});
    EXPECT_EQ(rows.violations, std::vector<std::string>{});
    // (A legacy row's object can only have gone by a delete, which the fake
    // checks as it happens.)
    for (const auto& [id, p] : rows.rows) {
      if (p && p->rfind("avatar/", 0) == 0) {
        EXPECT_EQ(store.dest.count(*p), 1U) << "row " << id << " -> " << *p;
      }
    }
  }
};

Error error_of(ErrorKind kind, const std::string& code) { return Error{kind, code, "injected " + code}; }

}  // namespace

// ---- the plan: docs/design.md's action table --------------------------------

TEST(Plan, EveryRowOfTheActionTable) {
  Item i;
  i.dest_key = "avatar/a.png";
  const s3::ObjectEntry o{"k", md5_etag(1), 1, ""};
  auto with = [&](bool src, bool dst, bool rows) {
    Item x = i;
    if (src) x.src = o;
    if (dst) x.dst = o;
    if (rows) x.ids = {7};
    return plan(x);
  };
  EXPECT_EQ(with(true, false, true), Action::Copy);
  EXPECT_EQ(with(true, false, false), Action::Copy);  // an orphan object moves too
  EXPECT_EQ(with(true, true, true), Action::Compare);
  EXPECT_EQ(with(true, true, false), Action::Compare);
  EXPECT_EQ(with(false, true, true), Action::RepairRows);
  EXPECT_EQ(with(false, false, true), Action::Dangling);
  EXPECT_EQ(with(false, true, false), Action::Nothing);
  i.dest_key = std::string(1025, 'k');
  EXPECT_EQ(with(true, false, true), Action::KeyTooLong);
  EXPECT_EQ(with(true, true, true), Action::Compare);  // an existing destination is compared, not written
}

// ---- legacy object, no destination: copy -> verify -> rewrite -> delete -------

TEST(Migration, LegacyObjectIsCopiedItsRowsRewrittenThenItIsDeleted) {
  World w;
  w.legacy("a.png", 1);
  const auto id = w.row("image/a.png");
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.objects_copied, 1U);
  EXPECT_EQ(r.counts.rows_rewritten, 1U);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 1U);
  EXPECT_EQ(w.path(id), "avatar/a.png");
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 0U);
  EXPECT_EQ(w.store.dest.at("avatar/a.png").etag, md5_etag(1));
  EXPECT_EQ(w.store.calls["head"], 0);  // an MD5 ETag verifies the copy without a HEAD
  w.expect_invariant();
}

TEST(Migration, AnObjectNoRowPointsToMovesToo) {
  World w;
  w.legacy("orphan.png", 1);
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.objects_copied, 1U);
  EXPECT_EQ(r.counts.orphan_objects_moved, 1U);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 1U);
  EXPECT_EQ(w.store.dest.count("avatar/orphan.png"), 1U);
  w.expect_invariant();
}

TEST(Migration, KeepSourceRewritesRowsAndLeavesTheLegacyObject) {
  World w;
  w.o.keep_source = true;
  w.legacy("a.png", 1);
  w.row("image/a.png");
  const auto r = w.run();
  EXPECT_EQ(r.counts.rows_rewritten, 1U);
  EXPECT_EQ(r.counts.legacy_objects_kept, 1U);
  EXPECT_EQ(w.store.calls["delete_objects"], 0);
  w.expect_invariant();
}

TEST(Migration, DryRunChangesNothingAndCountsWhatItWouldDo) {
  World w;
  w.o.dry_run = true;
  w.legacy("a.png", 1);
  const auto id = w.row("image/a.png");
  const auto r = w.run();
  EXPECT_EQ(r.counts.objects_copied, 1U);
  EXPECT_EQ(r.counts.rows_rewritten, 1U);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 1U);
  EXPECT_EQ(w.path(id), "image/a.png");
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 1U);
  EXPECT_TRUE(w.store.dest.empty());
  EXPECT_EQ(w.rows.statements, 0);
  EXPECT_EQ(w.store.started, (std::map<std::string, int>{}));  // no write was sent
  EXPECT_EQ(r.forecast.requests, (std::map<std::string, std::uint64_t>{{"CopyObject", 1}, {"DeleteObjects", 1}}));
  EXPECT_EQ(r.forecast.deleted_keys, 1U);
  EXPECT_EQ(r.ended.at(State::Done), 1);
}

// The dry run's stages are the real run's: the forecast counts what the
// copier asks for, with its part sizes, on each path.
TEST(Migration, DryRunForecastsEachCopyPathWithTheCopiersPartSizes) {
  for (const bool same : {true, false}) {
    World w;
    w.o.dry_run = true;
    w.o.multipart_threshold = 10ULL << 20;
    w.store.same = same;
    w.legacy("small.png", 1);
    w.legacy("big.png", 2, 25ULL << 20);  // 25 MiB at a 10 MiB threshold: 3 parts either way
    w.row("image/small.png");
    w.row("image/big.png");
    const auto r = w.run();
    EXPECT_EQ(r.result.outcome, Outcome::Complete);
    EXPECT_EQ(r.counts.objects_copied, 2U);
    EXPECT_TRUE(w.store.dest.empty());
    auto& f = r.forecast.requests;
    if (same) {
      EXPECT_EQ(f.at("CopyObject"), 1U);
      EXPECT_EQ(f.at("UploadPartCopy"), 3U);
    } else {
      EXPECT_EQ(f.at("GetObject"), 4U);  // one for the small one, a ranged one per part of the big one
      EXPECT_EQ(f.at("PutObject"), 1U);
      EXPECT_EQ(f.at("UploadPart"), 3U);
    }
    EXPECT_EQ(f.at("CreateMultipartUpload"), 1U);
    EXPECT_EQ(f.at("CompleteMultipartUpload"), 1U);
    // The source's headers before its parts, and the verify stage's HEAD of
    // the copy (answered from the copy it pretended to make).
    EXPECT_EQ(f.at("HeadObject"), 2U);
    EXPECT_EQ(w.store.calls["head"], 1) << "the source is re-read for real after a multipart copy";
    EXPECT_EQ(r.forecast.deleted_keys, 2U);
  }
}

TEST(Migration, DryRunWithAGraceForecastsTheRestampAndDeletesNothing) {
  World w;
  w.o.dry_run = true;
  w.o.delete_grace = std::chrono::hours(24);
  w.legacy("a.png", 1);
  w.dest("a.png", 1);  // there before: its clock starts with a restamp
  w.row("image/a.png");
  const auto r = w.run();
  EXPECT_EQ(r.counts.legacy_objects_in_grace, 1U);
  EXPECT_EQ(r.forecast.requests, (std::map<std::string, std::uint64_t>{{"CopyObject", 1}, {"HeadObject", 1}}));
  EXPECT_EQ(w.store.started, (std::map<std::string, int>{}));
}

TEST(Migration, WithoutConditionalWritesTheCopyGoesOutUnconditioned) {
  // Stores that refuse If-None-Match (Swift's s3api) get copies without it:
  // a destination written after the listing is then not refused.
  for (const bool conditional : {true, false}) {
    World w;
    w.o.conditional_writes = conditional;
    w.legacy("a.png", 1);
    w.row("image/a.png");
    w.store.before_copy = [&](const std::string& key) { w.store.dest[key] = {md5_etag(1), 100, ""}; };
    const auto r = w.run();
    EXPECT_EQ(r.counts.objects_copied, conditional ? 0U : 1U);
    EXPECT_EQ(r.counts.objects_already_in_place, conditional ? 1U : 0U);
    w.expect_invariant();
  }
}

// ---- legacy object and a listed destination ---------------------------------

TEST(Migration, IdenticalDestinationIsInPlaceNoCopyRowsRewrittenLegacyDeleted) {
  World w;
  w.legacy("a.png", 1);
  w.dest("a.png", 1);
  const auto id = w.row("image/a.png");
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.objects_already_in_place, 1U);
  EXPECT_EQ(r.counts.objects_copied, 0U);
  EXPECT_EQ(w.store.calls["copy"], 0);
  EXPECT_EQ(w.path(id), "avatar/a.png");
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 0U);
  w.expect_invariant();
}

TEST(Migration, DifferentDestinationIsAConflictAndNothingChanges) {
  World w;
  w.legacy("a.png", 1);
  w.dest("a.png", 2);
  const auto id = w.row("image/a.png");
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::NeedsHuman);
  EXPECT_EQ(r.counts.conflicts, 1U);
  EXPECT_EQ(r.kinds(), std::vector<std::string>{"conflict"});
  EXPECT_EQ(w.path(id), "image/a.png");
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 1U);
  EXPECT_EQ(w.store.dest.at("avatar/a.png").etag, md5_etag(2));  // never overwritten
  w.expect_invariant();
}

TEST(Migration, ADifferentSizeIsAConflictEvenWithTheSameETag) {
  World w;
  w.legacy("a.png", 1, 100);
  w.dest("a.png", 1, 99);
  w.row("image/a.png");
  EXPECT_EQ(w.run().counts.conflicts, 1U);
}

TEST(Migration, AMultipartDestinationThisToolMadeIsSettledByItsMetadata) {
  World w;
  w.legacy("big.png", 1);
  w.store.dest["avatar/big.png"] = {"0123456789abcdef0123456789ab-2", 100, md5_etag(1)};
  const auto id = w.row("image/big.png");
  const auto r = w.run();
  EXPECT_EQ(r.counts.objects_already_in_place, 1U);
  EXPECT_EQ(w.store.calls["head"], 1);
  EXPECT_EQ(w.path(id), "avatar/big.png");
  w.expect_invariant();
}

TEST(Migration, ANonMD5DestinationWithoutOurMetadataIsAConflict) {
  World w;
  w.legacy("big.png", 1);
  w.store.dest["avatar/big.png"] = {"0123456789abcdef0123456789ab-2", 100, ""};
  const auto id = w.row("image/big.png");
  const auto r = w.run();
  EXPECT_EQ(r.counts.conflicts, 1U);
  EXPECT_EQ(w.path(id), "image/big.png");
  w.expect_invariant();
}

// ---- no legacy object -------------------------------------------------------

TEST(Migration, RowsWhoseLegacyObjectIsGoneMoveToAnExistingDestination) {
  World w;
  w.dest("a.png", 1);
  const auto id = w.row("image/a.png");
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.objects_already_in_place, 1U);
  EXPECT_EQ(r.counts.rows_rewritten, 1U);
  EXPECT_EQ(w.path(id), "avatar/a.png");
  EXPECT_EQ(w.store.calls["delete_objects"], 0);
  w.expect_invariant();
}

TEST(Migration, ADanglingRowIsReportedAndLeftAsItIs) {
  World w;
  const auto id = w.row("image/nowhere.png");
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::NeedsHuman);
  EXPECT_EQ(r.counts.dangling_rows, 1U);
  EXPECT_EQ(r.kinds(), std::vector<std::string>{"dangling_row"});
  EXPECT_EQ(w.path(id), "image/nowhere.png");
  EXPECT_EQ(w.rows.statements, 0);
}

TEST(Migration, AModernObjectAndModernRowsAreLeftAlone) {
  World w;
  w.dest("a.png", 1);
  const auto id = w.row("avatar/a.png");
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(w.store.calls["copy"] + w.store.calls["head"] + w.store.calls["delete_objects"], 0);
  EXPECT_EQ(w.rows.statements, 0);
  EXPECT_EQ(w.path(id), "avatar/a.png");
}

TEST(Migration, ADestinationKeyOverTheLimitIsReportedNotAttempted) {
  World w;
  const std::string name(1024 - 7 + 1, 'k');  // "avatar/" + name is 1,025 bytes
  w.legacy(name, 1);
  const auto id = w.row("image/" + name);
  const auto r = w.run();
  EXPECT_EQ(r.counts.conflicts, 1U);
  EXPECT_EQ(r.kinds(), std::vector<std::string>{"key_too_long"});
  EXPECT_EQ(w.store.calls["copy"], 0);
  EXPECT_EQ(w.path(id), "image/" + name);
}

// ---- storage classes and archived objects ---------------------------------------

TEST(MigrationClasses, EachCopyKeepsTheClassItsLegacyObjectIsListedIn) {
  World w;
  w.o.multipart_threshold = 150;
  w.legacy("ia.png", 1);
  w.store.legacy["image/ia.png"].storage_class = "STANDARD_IA";
  w.legacy("big-ia.png", 2, 200);  // the multipart path
  w.store.legacy["image/big-ia.png"].storage_class = "STANDARD_IA";
  w.legacy("std.png", 3);
  w.row("image/ia.png");
  w.row("image/big-ia.png");
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.objects_copied, 3U);
  EXPECT_EQ(w.store.dest.at("avatar/ia.png").storage_class, "STANDARD_IA");
  EXPECT_EQ(w.store.dest.at("avatar/big-ia.png").storage_class, "STANDARD_IA");
  EXPECT_EQ(w.store.dest.at("avatar/std.png").storage_class, "STANDARD");
  w.expect_invariant();
}

TEST(MigrationClasses, TheStorageClassOptionGoesWithEveryCopy) {
  World w;
  w.o.storage_class = "INTELLIGENT_TIERING";
  w.legacy("ia.png", 1);
  w.store.legacy["image/ia.png"].storage_class = "STANDARD_IA";
  w.legacy("std.png", 2);
  const auto r = w.run();
  EXPECT_EQ(r.counts.objects_copied, 2U);
  EXPECT_EQ(w.store.dest.at("avatar/ia.png").storage_class, "INTELLIGENT_TIERING");
  EXPECT_EQ(w.store.dest.at("avatar/std.png").storage_class, "INTELLIGENT_TIERING");
}

TEST(MigrationClasses, MultipartAlwaysSendsEveryCopyThroughTheMultipartPath) {
  World w;  // --sse off AWS: RGW stores a CopyObject unencrypted
  w.o.multipart_always = true;
  w.legacy("small.png", 1, 10);
  w.legacy("empty.png", 2, 0);
  const auto r = w.run();
  EXPECT_EQ(r.counts.objects_copied, 2U);
  EXPECT_EQ(w.store.started["multipart_copy"], 2);
  EXPECT_EQ(w.store.started["copy"], 0);
}

TEST(MigrationClasses, AnArchivedObjectIsReportedNotCopiedAndItsRowsStay) {
  World w;
  w.legacy("frozen.png", 1);
  w.store.legacy["image/frozen.png"].storage_class = "GLACIER";
  w.legacy("thawing.png", 2);
  w.store.legacy["image/thawing.png"].storage_class = "DEEP_ARCHIVE";
  w.store.legacy["image/thawing.png"].restore = "ongoing-request=\"true\"";
  w.legacy("live.png", 3);
  const auto frozen = w.row("image/frozen.png");
  const auto thawing = w.row("image/thawing.png");
  const auto live = w.row("image/live.png");
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::NeedsHuman);
  EXPECT_EQ(r.counts.archived_objects, 2U);
  EXPECT_EQ(r.counts.failures, 0U);
  EXPECT_EQ(r.counts.conflicts, 0U);
  EXPECT_EQ(r.counts.objects_copied, 1U);
  EXPECT_EQ(r.kinds(), (std::vector<std::string>{"archived", "archived"}));
  EXPECT_EQ(w.store.started["copy"], 1);  // only live.png: an archived object is not attempted
  EXPECT_EQ(w.path(frozen), "image/frozen.png");
  EXPECT_EQ(w.path(thawing), "image/thawing.png");
  EXPECT_EQ(w.path(live), "avatar/live.png");
  EXPECT_EQ(w.store.legacy.count("image/frozen.png"), 1U);
  EXPECT_EQ(w.store.legacy.count("image/thawing.png"), 1U);
  w.expect_invariant();
}

TEST(MigrationClasses, ARestoredArchivedObjectIsCopiedIntoItsClass) {
  World w;
  w.legacy("thawed.png", 1);
  w.store.legacy["image/thawed.png"].storage_class = "GLACIER";
  w.store.legacy["image/thawed.png"].restore =
      "ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2026 00:00:00 GMT\"";
  const auto id = w.row("image/thawed.png");
  const auto r = w.run();
  EXPECT_EQ(r.counts.objects_copied, 1U);
  EXPECT_EQ(r.counts.archived_objects, 0U);
  EXPECT_EQ(w.path(id), "avatar/thawed.png");
  EXPECT_EQ(w.store.dest.at("avatar/thawed.png").storage_class, "GLACIER");
  w.expect_invariant();
}

TEST(MigrationClasses, ACopyRefusedForTheObjectsStateIsArchivedNotAFailure) {
  World w;  // an Intelligent-Tiering archive tier lists as INTELLIGENT_TIERING
  w.legacy("tiered.png", 1);
  w.store.legacy["image/tiered.png"].storage_class = "INTELLIGENT_TIERING";
  const auto id = w.row("image/tiered.png");
  w.fail_every("copy", Error{ErrorKind::AccessDenied, "InvalidObjectState", "not valid for the storage class", 403});
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::NeedsHuman);  // not the run-stopping AccessDenied
  EXPECT_EQ(r.counts.archived_objects, 1U);
  EXPECT_EQ(r.counts.failures, 0U);
  EXPECT_EQ(w.path(id), "image/tiered.png");
}

TEST(MigrationClasses, ACustomerKeyedObjectIsReportedAsSuch) {
  World w;
  w.legacy("locked.png", 1);
  const auto id = w.row("image/locked.png");
  w.fail_every("copy", Error{ErrorKind::Fatal, "InvalidRequest",
                             "The object was stored using a form of Server Side Encryption. The correct parameters "
                             "must be provided to retrieve the object.",
                             400});
  const auto r = w.run();
  EXPECT_EQ(r.counts.sse_c_objects, 1U);
  EXPECT_EQ(r.counts.failures, 0U);
  EXPECT_EQ(r.kinds(), std::vector<std::string>{"sse_c"});
  EXPECT_EQ(w.path(id), "image/locked.png");
}

// ---- 412 on copy -> HEAD destination ------------------------------------------

TEST(Migration, Copy412ThenTheDestinationIsIdenticalMeansInPlace) {
  World w;
  w.legacy("a.png", 1);
  const auto id = w.row("image/a.png");
  // Someone (a previous run's copy) wrote the same content after the listing.
  w.store.before_copy = [&](const std::string& key) { w.store.dest[key] = {md5_etag(1), 100, ""}; };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.objects_already_in_place, 1U);
  EXPECT_EQ(r.counts.objects_copied, 0U);
  EXPECT_EQ(w.store.calls["head"], 1);
  EXPECT_EQ(w.path(id), "avatar/a.png");
  w.expect_invariant();
}

TEST(Migration, Copy412ThenTheDestinationDiffersMeansConflict) {
  World w;
  w.legacy("a.png", 1);
  const auto id = w.row("image/a.png");
  w.store.before_copy = [&](const std::string& key) { w.store.dest[key] = {md5_etag(9), 100, ""}; };
  const auto r = w.run();
  EXPECT_EQ(r.counts.conflicts, 1U);
  EXPECT_EQ(w.path(id), "image/a.png");
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 1U);
  EXPECT_EQ(w.store.dest.at("avatar/a.png").etag, md5_etag(9));
  w.expect_invariant();
}

TEST(Migration, Copy412WithNoDestinationMeansTheSourceChangedAndFails) {
  World w;
  w.legacy("a.png", 1);
  const auto id = w.row("image/a.png");
  // The legacy object was overwritten after the listing: If-Match fails.
  w.store.before_copy = [&](const std::string&) { w.store.legacy["image/a.png"].etag = md5_etag(5); };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::NeedsHuman);
  EXPECT_EQ(r.counts.failures, 1U);
  EXPECT_NE(r.items[0].at("message").get<std::string>().find("changed since it was listed"), std::string::npos);
  EXPECT_EQ(w.path(id), "image/a.png");
  EXPECT_TRUE(w.store.dest.empty());
  w.expect_invariant();
}

// ---- other copy and verify arrows ---------------------------------------------

TEST(Migration, ALegacyObjectGoneBeforeItsCopyFailsTheItemOnly) {
  World w;
  w.legacy("a.png", 1);
  w.legacy("b.png", 2);
  const auto a = w.row("image/a.png");
  const auto b = w.row("image/b.png");
  w.store.before_copy = [&](const std::string& key) {
    if (key == "avatar/a.png") w.store.legacy.erase("image/a.png");
  };
  const auto r = w.run();
  EXPECT_EQ(r.counts.failures, 1U);
  EXPECT_EQ(r.counts.objects_copied, 1U);
  EXPECT_EQ(w.store.calls["head"], 1);  // the destination, in case another worker moved it
  EXPECT_NE(r.items[0].at("message").get<std::string>().find("disappeared before it could be copied"),
            std::string::npos);
  EXPECT_EQ(w.path(a), "image/a.png");
  EXPECT_EQ(w.path(b), "avatar/b.png");
}

// Two workers on one name (two N at once, two operators): the other copied
// it, rewrote its row and deleted the legacy object between this one's
// listing and its copy. The destination is the listed object: in place.
TEST(Migration, ALegacyObjectMovedByAnotherWorkerBeforeItsCopyIsInPlace) {
  World w;
  w.legacy("a.png", 1);
  w.legacy("b.png", 2);
  const auto a = w.row("image/a.png");
  w.store.before_copy = [&](const std::string& key) {
    if (key != "avatar/a.png") return;
    w.store.dest[key] = {md5_etag(1), 100, ""};
    w.rows.rows[a] = key;
    w.store.legacy.erase("image/a.png");
  };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.failures, 0U);
  EXPECT_EQ(r.counts.objects_already_in_place, 1U);
  EXPECT_EQ(r.counts.objects_copied, 1U);
  EXPECT_EQ(r.counts.rows_superseded, 1U);
  EXPECT_EQ(w.path(a), "avatar/a.png");
  EXPECT_TRUE(w.store.legacy.empty());
  w.expect_invariant();
}

TEST(Migration, ALegacyObjectGoneAndADifferentDestinationFailsTheItem) {
  World w;
  w.legacy("a.png", 1);
  const auto a = w.row("image/a.png");
  w.store.before_copy = [&](const std::string& key) {
    w.store.dest[key] = {md5_etag(9), 100, ""};
    w.store.legacy.erase("image/a.png");
  };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::NeedsHuman);
  EXPECT_EQ(r.counts.failures, 1U);
  EXPECT_EQ(r.counts.objects_already_in_place, 0U);
  EXPECT_NE(r.items[0].at("message").get<std::string>().find("not proven to be it"), std::string::npos);
  EXPECT_EQ(w.path(a), "image/a.png");
}

// NoSuchUpload is a NotFound about our own multipart upload, aborted under
// us: the source is not in question, so no HEAD and no "disappeared".
TEST(Migration, AnAbortedMultipartUploadFailsTheCopyWithoutLookingForAnotherWorker) {
  World w;
  w.legacy("a.png", 1);
  const auto a = w.row("image/a.png");
  w.store.fail = [](const std::string& op, Side, const std::string&) -> std::optional<Error> {
    if (op == "copy") return error_of(ErrorKind::NotFound, "NoSuchUpload");
    return std::nullopt;
  };
  const auto r = w.run();
  EXPECT_EQ(r.counts.failures, 1U);
  EXPECT_EQ(w.store.calls["head"], 0);
  const auto message = r.items[0].at("message").get<std::string>();
  EXPECT_EQ(message.rfind("copy failed: NoSuchUpload", 0), 0U) << message;
  EXPECT_EQ(w.path(a), "image/a.png");
  w.expect_invariant();
}

TEST(Migration, ACopyFailingForGoodIsReportedAndTheRunGoesOn) {
  World w;
  w.legacy("a.png", 1);
  w.legacy("b.png", 2);
  const auto a = w.row("image/a.png");
  w.row("image/b.png");
  w.store.fail = [](const std::string& op, Side, const std::string& key) -> std::optional<Error> {
    if (op == "copy" && key == "avatar/a.png") return error_of(ErrorKind::Retryable, "InternalError");
    return std::nullopt;
  };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::NeedsHuman);
  EXPECT_EQ(r.counts.failures, 1U);
  EXPECT_EQ(r.counts.rows_rewritten, 1U);
  EXPECT_EQ(w.path(a), "image/a.png");
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 1U);
  w.expect_invariant();
}

TEST(Migration, AccessDeniedOnACopyStopsTheRun) {
  World w;
  w.o.concurrency = 2;
  w.legacy_with_rows(10);
  w.fail_every("copy", error_of(ErrorKind::AccessDenied, "AccessDenied"));
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Stopped);
  ASSERT_TRUE(r.result.error);
  EXPECT_EQ(r.result.error->code, "AccessDenied");
  EXPECT_EQ(w.store.stops.size(), 1U);
  EXPECT_EQ(r.counts.rows_rewritten, 0U);
  w.expect_invariant();
}

TEST(Migration, ManyRequestsFailingInARowStopTheRunAsAnOutage) {
  World w;
  w.o.concurrency = 4;
  w.legacy_with_rows(100);
  w.fail_every("copy", error_of(ErrorKind::Retryable, "InternalError"));
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Stopped);
  ASSERT_TRUE(r.result.error);
  EXPECT_NE(r.result.error->message.find("requests in a row failed"), std::string::npos);
  EXPECT_LE(r.counts.failures, 32U + 4U);  // the breaker's count, and those in flight
  w.expect_invariant();
}

TEST(Migration, AMultipartCopyIsVerifiedByHeadingTheCopyAndTheSource) {
  World w;
  w.o.multipart_threshold = 50;
  w.legacy("big.png", 1, 100);
  const auto id = w.row("image/big.png");
  const auto r = w.run();
  EXPECT_EQ(r.counts.objects_copied, 1U);
  EXPECT_EQ(w.store.calls["multipart_copy"], 1);
  EXPECT_EQ(w.store.calls["head"], 2);
  EXPECT_EQ(w.path(id), "avatar/big.png");
  EXPECT_EQ(w.store.dest.at("avatar/big.png").source_etag, md5_etag(1));
  w.expect_invariant();
}

TEST(Migration, ASourceChangedDuringItsMultipartCopyFailsAndKeepsTheRow) {
  World w;
  w.o.multipart_threshold = 50;
  w.legacy("big.png", 1, 100);
  const auto id = w.row("image/big.png");
  w.store.fail = [&](const std::string& op, Side side, const std::string&) -> std::optional<Error> {
    if (op == "head" && side == Side::Legacy) w.store.legacy["image/big.png"].etag = md5_etag(3);
    return std::nullopt;
  };
  const auto r = w.run();
  EXPECT_EQ(r.counts.failures, 1U);
  EXPECT_EQ(w.path(id), "image/big.png");
  w.expect_invariant();
}

TEST(Migration, BetweenTwoServicesTheObjectIsReadAndWritten) {
  World w;
  w.store.same = false;
  w.legacy("a.png", 1);
  const auto id = w.row("image/a.png");
  const auto r = w.run();
  EXPECT_EQ(r.counts.objects_copied, 1U);
  EXPECT_EQ(w.store.calls["stream_copy"], 1);
  EXPECT_EQ(w.store.calls["copy"], 0);
  EXPECT_EQ(w.path(id), "avatar/a.png");
  w.expect_invariant();
}

TEST(Migration, BetweenTwoServicesTheBytesHeldStayWithinTheMemoryBudget) {
  World w;
  w.store.same = false;
  w.store.latency = 1ms;
  w.o.memory_budget = 40ULL << 20;  // parts of 20 MiB would fill it: the threshold's 8 MiB go
  w.o.multipart_threshold = 8ULL << 20;
  for (int i = 0; i < 20; ++i) {
    w.legacy(fmt::format("{:02}.png", i), i, (i % 2 == 0 ? 30ULL : 3ULL) << 20);  // multipart and single
    w.row(fmt::format("image/{:02}.png", i));
  }
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.objects_copied, 20U);
  EXPECT_EQ(w.store.calls["stream_copy"], 20);
  EXPECT_GT(w.store.stream_peak, 0U);
  EXPECT_LE(w.store.stream_peak, 40ULL << 20);
  for (const auto& [key, obj] : w.store.dest) EXPECT_EQ(obj.source_etag.empty(), obj.size < (8ULL << 20)) << key;
  w.expect_invariant();
}

TEST(Migration, StreamPartsStayWithinS3sLimitsTheThresholdAndHalfTheBudget) {
  constexpr std::uint64_t MiB = 1ULL << 20;
  constexpr auto Streamed = Copier::Route::Streamed;
  constexpr auto ServerSide = Copier::Route::ServerSide;
  EXPECT_EQ(Copier::part_size(Streamed, 100 * MiB, 8 * MiB, 256 * MiB), 8 * MiB);
  EXPECT_EQ(Copier::part_size(Streamed, 100 * MiB, 5ULL << 30, 256 * MiB), 64 * MiB);      // the HTTP layer's limit
  EXPECT_EQ(Copier::part_size(Streamed, 100 * MiB, 5ULL << 30, 32 * MiB), 16 * MiB);       // half the budget
  EXPECT_EQ(Copier::part_size(Streamed, 100 * MiB, 5ULL << 30, 4 * MiB), 5 * MiB);         // S3's smallest part
  EXPECT_EQ(Copier::part_size(Streamed, 100000 * 8 * MiB, 8 * MiB, 256 * MiB), 80 * MiB);  // 10,000 parts at most
  // Server-side, the threshold within S3's part limits; no memory is held.
  EXPECT_EQ(Copier::part_size(ServerSide, 100 * MiB, 8 * MiB, 4 * MiB), 8 * MiB);
  EXPECT_EQ(Copier::part_size(ServerSide, 100 * MiB, 1 * MiB, 256 * MiB), 5 * MiB);
  EXPECT_EQ(Copier::part_size(ServerSide, 6ULL << 40, 6ULL << 40, 256 * MiB), 5ULL << 30);  // 5 GiB, S3's largest part
  EXPECT_EQ(Copier::part_size(ServerSide, 100000 * 8 * MiB, 8 * MiB, 256 * MiB), 80 * MiB);
}

// ---- compare-and-set ---------------------------------------------------------

TEST(Migration, ARowTheApplicationChangedFirstIsSupersededAndTheObjectStillGoes) {
  World w;
  w.legacy("a.png", 1);
  w.dest("new.png", 2);
  const auto id = w.row("image/a.png");
  w.rows.before_cas = [&](const std::vector<db::CasItem>&) -> std::optional<Error> {
    w.rows.rows[id] = "avatar/new.png";  // the live app's write, between the scan and the CAS
    return std::nullopt;
  };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.rows_superseded, 1U);
  EXPECT_EQ(r.counts.rows_rewritten, 0U);
  EXPECT_EQ(w.path(id), "avatar/new.png");  // the app's write wins
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 0U);
  w.expect_invariant();
}

TEST(Migration, RowsAreRewrittenInBatchesOfTheConfiguredSize) {
  World w;
  w.o.cas_batch = 10;
  w.legacy_with_rows(35);
  const auto r = w.run();
  EXPECT_EQ(r.counts.rows_rewritten, 35U);
  EXPECT_GE(w.rows.statements, 4);
  EXPECT_LE(w.rows.statements, 8);
  w.expect_invariant();
}

TEST(Migration, ADatabaseFailingForGoodStopsTheRunWithRowsOnTheirLegacyObjects) {
  World w;
  w.legacy_with_rows(5);
  w.rows.before_cas = [](const std::vector<db::CasItem>&) -> std::optional<Error> {
    return error_of(ErrorKind::Retryable, "08006");
  };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Stopped);
  EXPECT_EQ(r.result.stop_reason, "error");
  EXPECT_EQ(r.counts.rows_rewritten, 0U);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 0U);
  EXPECT_EQ(w.store.legacy.size(), 5U);  // every row still has its object
  w.expect_invariant();

  // The rerun finds the copies in place and finishes without copying again.
  w.rows.before_cas = nullptr;
  w.store.calls.clear();
  const auto again = w.run();
  EXPECT_EQ(again.result.outcome, Outcome::Complete);
  EXPECT_EQ(again.counts.objects_already_in_place, 5U);
  EXPECT_EQ(w.store.calls["copy"], 0);
  EXPECT_TRUE(w.store.legacy.empty());
  w.expect_invariant();
}

// ---- DeleteObjects ---------------------------------------------------------------

TEST(Migration, PerKeyDeleteErrorsAreReportedNeverCountedDeleted) {
  World w;
  w.legacy_with_rows(4);
  w.store.delete_key_error = [](const std::string& key) -> std::optional<std::string> {
    if (key == "image/002.png") return "AccessDenied";
    return std::nullopt;
  };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::NeedsHuman);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 3U);
  EXPECT_EQ(r.counts.failures, 1U);
  EXPECT_EQ(r.kinds(), std::vector<std::string>{"delete_failed"});
  EXPECT_EQ(w.store.legacy.count("image/002.png"), 1U);
  EXPECT_EQ(r.counts.rows_rewritten, 4U);
  w.expect_invariant();
}

TEST(Migration, ASlowDownInsideTheDeleteAnswerRetriesThoseKeysAndSlowsEveryone) {
  World w;
  w.legacy_with_rows(6);
  std::map<std::string, int> refused;
  w.store.delete_key_error = [&](const std::string& key) -> std::optional<std::string> {
    if ((key == "image/001.png" || key == "image/004.png") && refused[key]++ < 2) return "SlowDown";
    return std::nullopt;
  };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 6U);  // each counted once, when it went
  EXPECT_EQ(r.counts.failures, 0U);
  EXPECT_TRUE(w.store.legacy.empty());
  EXPECT_GE(w.store.throttles, 1);
  EXPECT_EQ(w.store.calls["delete_objects"], 3);
  w.expect_invariant();
}

TEST(Migration, AKeyThrottledBeyondItsAttemptsIsReportedAndStays) {
  World w;
  w.legacy("a.png", 1);
  w.legacy("b.png", 2);
  w.row("image/a.png");
  w.row("image/b.png");
  w.store.delete_key_error = [](const std::string& key) -> std::optional<std::string> {
    if (key == "image/a.png") return "SlowDown";
    return std::nullopt;
  };
  const auto r = w.run();
  EXPECT_EQ(r.counts.legacy_objects_deleted, 1U);
  EXPECT_EQ(r.counts.failures, 1U);
  EXPECT_NE(r.items[0].at("message").get<std::string>().find("after 4 attempts"), std::string::npos);
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 1U);
  EXPECT_EQ(w.store.calls["delete_objects"], 4);
  w.expect_invariant();
}

TEST(Migration, AKeyXMLCannotCarryIsDeletedAlone) {
  World w;
  w.legacy("tab\x01.png", 1);
  w.row("image/tab\x01.png");
  const auto r = w.run();
  EXPECT_EQ(r.counts.legacy_objects_deleted, 1U);
  EXPECT_EQ(w.store.calls["delete_object"], 1);
  EXPECT_EQ(w.store.calls["delete_objects"], 0);
}

TEST(Migration, DeleteVersionsRemovesExactlyTheVersionCopied) {
  World w;
  w.legacy_with_rows(3);
  for (auto& [key, obj] : w.store.legacy) obj.version_id = "v1-" + key;
  w.o.delete_versions = true;
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 3U);
  EXPECT_TRUE(w.store.legacy.empty());
  EXPECT_EQ(w.store.versions_deleted, (std::vector<std::string>{"image/000.png?versionId=v1-image/000.png",
                                                                "image/001.png?versionId=v1-image/001.png",
                                                                "image/002.png?versionId=v1-image/002.png"}));
  w.expect_invariant();
}

TEST(Migration, DeleteVersionsLeavesAVersionWrittenSinceTheCopyAndReportsIt) {
  World w;
  w.legacy_with_rows(2);
  for (auto& [key, obj] : w.store.legacy) obj.version_id = "v1";
  w.o.delete_versions = true;
  // The app writes image/001.png again after its copy, before the delete's HEAD.
  w.store.fail = [&](const std::string& op, Side side, const std::string& key) -> std::optional<Error> {
    if (op == "head" && side == Side::Legacy && key == "image/001.png") w.store.legacy[key] = {md5_etag(99), 100, ""};
    return std::nullopt;
  };
  w.store.legacy["image/001.png"].version_id = "v1";
  const auto r = w.run();
  EXPECT_EQ(r.counts.legacy_objects_deleted, 1U);
  EXPECT_EQ(r.counts.failures, 1U);
  ASSERT_EQ(r.kinds(), std::vector<std::string>{"delete_failed"});
  EXPECT_NE(r.items[0].at("message").get<std::string>().find("written since"), std::string::npos);
  EXPECT_EQ(w.store.legacy.count("image/001.png"), 1U);
  EXPECT_EQ(w.store.versions_deleted, std::vector<std::string>{"image/000.png?versionId=v1"});
  EXPECT_EQ(w.path(2), "avatar/001.png");  // its row already points at the copy
  w.expect_invariant();
}

TEST(Migration, WithoutDeleteVersionsNoHeadAndNoVersionIds) {
  World w;
  w.legacy_with_rows(2);
  for (auto& [key, obj] : w.store.legacy) obj.version_id = "v1";
  const auto r = w.run();
  EXPECT_EQ(r.counts.legacy_objects_deleted, 2U);
  EXPECT_TRUE(w.store.versions_deleted.empty());
  EXPECT_EQ(w.store.calls["head"], 0);
}

// ---- a stop in each stage ------------------------------------------------------

TEST(MigrationStop, DuringTheScanChangesNothing) {
  World w;
  w.legacy("a.png", 1);
  const auto id = w.row("image/a.png");
  w.hooks.stop_requested = [] { return true; };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Stopped);
  EXPECT_EQ(r.result.stop_reason, "signal");
  EXPECT_EQ(w.store.calls["list"] + w.store.calls["copy"], 0);
  EXPECT_EQ(w.path(id), "image/a.png");
}

TEST(MigrationStop, DuringCopiesFinishesThoseInFlightRewritesTheirRowsAndResumes) {
  World w;
  w.o.concurrency = 8;
  w.store.latency = 5ms;
  w.legacy_with_rows(200);
  w.hooks.stop_requested = [&] { return w.store.calls["copy"] >= 20; };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Stopped);
  EXPECT_EQ(r.result.stop_reason, "signal");
  EXPECT_EQ(w.store.stops.size(), 1U);
  EXPECT_GE(r.counts.objects_copied, 20U);
  EXPECT_LT(r.counts.objects_copied, 200U);
  EXPECT_EQ(r.counts.rows_rewritten, r.counts.objects_copied);  // every finished copy's row moved
  w.expect_invariant();

  w.hooks.stop_requested = [] { return false; };
  const int copies_before = w.store.calls["copy"];
  const auto again = w.run();
  EXPECT_EQ(again.result.outcome, Outcome::Complete);
  EXPECT_EQ(w.store.calls["copy"] - copies_before, static_cast<int>(200 - r.counts.objects_copied));
  EXPECT_TRUE(w.store.legacy.empty());
  for (const auto& [id, p] : w.rows.rows) EXPECT_EQ(p->rfind("avatar/", 0), 0U);
  w.expect_invariant();
}

TEST(MigrationStop, DuringARewriteCommitsItThenStops) {
  World w;
  w.rows.latency = 20ms;  // the statement is in flight when the stop comes
  w.legacy_with_rows(5);
  w.hooks.stop_requested = [&] { return w.rows.statements == 0 && w.store.dest.size() == 5; };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Stopped);
  EXPECT_EQ(r.counts.rows_rewritten, 5U);
  w.expect_invariant();
}

TEST(MigrationStop, DuringDeleteBackoffsLeavesThoseObjectsForTheRerun) {
  World w;
  w.o.delete_retry.base = 10s;  // a stop must not wait these out
  w.o.delete_retry.throttled_base = 10s;
  w.o.delete_retry.cap = 10s;
  w.legacy("a.png", 1);
  w.legacy("b.png", 2);
  w.row("image/a.png");
  w.row("image/b.png");
  bool throttling = true;
  w.store.delete_key_error = [&](const std::string& key) -> std::optional<std::string> {
    if (throttling && key == "image/a.png") return "SlowDown";
    return std::nullopt;
  };
  w.hooks.stop_requested = [&] { return w.store.throttles > 0; };
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = w.run();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(r.result.outcome, Outcome::Stopped);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 1U);
  EXPECT_EQ(r.counts.failures, 0U);  // not a failure: left for the rerun
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 1U);
  w.expect_invariant();

  throttling = false;
  w.hooks.stop_requested = [] { return false; };
  const auto again = w.run();
  EXPECT_EQ(again.result.outcome, Outcome::Complete);
  EXPECT_EQ(again.counts.legacy_objects_deleted, 1U);
  EXPECT_TRUE(w.store.legacy.empty());
}

TEST(MigrationStop, OnAFatalErrorCopiesThatLandLeaveTheirRowsAlone) {
  World w;
  w.o.concurrency = 4;
  w.store.latency = 2ms;
  w.legacy_with_rows(20);
  w.store.fail = [](const std::string& op, Side, const std::string& key) -> std::optional<Error> {
    if (op == "copy" && key == "avatar/005.png") return Error{ErrorKind::NotFound, "NoSuchBucket", "gone"};
    return std::nullopt;
  };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Stopped);
  EXPECT_EQ(r.result.stop_reason, "error");
  ASSERT_TRUE(r.result.error);
  EXPECT_EQ(r.result.error->code, "NoSuchBucket");
  w.expect_invariant();
  // Whatever was rewritten before the stop has its copy; the rest still has its legacy object.
  for (const auto& [id, p] : w.rows.rows)
    if (p->rfind("image/", 0) == 0) {
      EXPECT_EQ(w.store.legacy.count(*p), 1U) << *p;
    }
}

// ---- the operator's pause -------------------------------------------------------

TEST(MigrationPause, NoCopyOrDeleteStartsWhilePausedAndTheRunFinishesAfter) {
  World w;
  w.o.concurrency = 4;
  w.o.cas_batch = 1;
  w.store.latency = 2ms;
  w.legacy_with_rows(60);
  bool pause = false;
  int copies_at_pause = -1;
  int deletes_at_pause = -1;
  int polls_paused = 0;
  bool started_while_paused = false;
  w.hooks.pause_requested = [&]() -> std::optional<std::string> {
    if (!pause && w.store.started["copy"] >= 20 && polls_paused == 0) pause = true;
    if (!pause) return std::nullopt;
    // In flight when the pause came: at most the window, then nothing more.
    if (copies_at_pause < 0) {
      copies_at_pause = w.store.started["copy"];
      deletes_at_pause = w.store.started["delete_objects"];
    } else if (w.store.idle() &&
               (w.store.started["copy"] != copies_at_pause || w.store.started["delete_objects"] != deletes_at_pause)) {
      started_while_paused = true;
    }
    if (++polls_paused == 20) pause = false;  // about 40 ms paused
    return pause ? std::optional<std::string>("test") : std::nullopt;
  };
  w.o.flush_interval = 2ms;
  const auto r = w.run();
  EXPECT_FALSE(started_while_paused);
  EXPECT_GE(polls_paused, 20);
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_GT(r.result.paused_seconds, 0.0);
  EXPECT_EQ(r.counts.objects_copied, 60U);
  EXPECT_EQ(r.counts.rows_rewritten, 60U);
  EXPECT_TRUE(w.store.legacy.empty());
  w.expect_invariant();
}

TEST(MigrationPause, ARunStartedPausedCopiesNothingUntilResumed) {
  World w;
  w.legacy_with_rows(5);
  int polls = 0;
  std::map<std::string, int> while_paused;
  w.hooks.pause_requested = [&]() -> std::optional<std::string> {
    if (++polls < 10) {
      while_paused = w.store.started;
      return "pause file exists";
    }
    return std::nullopt;
  };
  const auto r = w.run();
  EXPECT_TRUE(while_paused.empty());  // not one copy or delete sent
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.objects_copied, 5U);
}

TEST(MigrationPause, AStopWhilePausedEndsWithoutWaitingForTheResume) {
  World w;
  w.o.concurrency = 2;
  w.store.latency = 2ms;  // the pause is polled each tick: let the copies take a few
  w.legacy_with_rows(10);
  w.hooks.pause_requested = [&]() -> std::optional<std::string> {
    if (w.store.started["copy"] >= 2) return "test";
    return std::nullopt;
  };
  int ticks_paused = 0;
  w.hooks.stop_requested = [&] { return w.store.started["copy"] >= 2 && ++ticks_paused > 5; };
  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Stopped);
  EXPECT_LT(r.counts.objects_copied, 10U);
  w.expect_invariant();
}

// ---- compare-and-set batches sized to a target statement time ------------------

namespace {

// A table whose compare-and-set costs `per_row` for each row (and nothing
// else): the rewriter should settle on target / per_row rows.
void cost_per_row(World& w, std::chrono::microseconds per_row) {
  w.rows.before_cas = [per_row](const std::vector<db::CasItem>& items) -> std::optional<Error> {
    std::this_thread::sleep_for(per_row * static_cast<int>(items.size()));
    return std::nullopt;
  };
}

}  // namespace

TEST(MigrationBatches, AFastDatabaseGetsBiggerBatchesUpToTheBound) {
  World w;
  w.o.cas_target = 100ms;
  w.o.concurrency = 4000;     // copies never hold back the batches
  w.o.flush_interval = 1s;    // only full batches go out
  w.o.keep_source = true;     // the fake's check of each delete is a table scan: skip 14,000 of them
  w.legacy_with_rows(14000);  // 500, 600, 720, ... reaches 2,000 after nine statements
  const auto r = w.run();
  EXPECT_EQ(r.counts.rows_rewritten, 14000U);
  ASSERT_GE(w.rows.statement_rows.size(), 3U);
  EXPECT_EQ(w.rows.statement_rows[0], 500U);
  EXPECT_EQ(w.rows.statement_rows[1], 600U);  // at most 20% more per statement
  EXPECT_EQ(*std::max_element(w.rows.statement_rows.begin(), w.rows.statement_rows.end()), 2000U);
  w.expect_invariant();
}

TEST(MigrationBatches, ASlowDatabaseGetsSmallerBatchesDownToTheTarget) {
  World w;
  w.o.cas_target = 20ms;
  w.o.concurrency = 4000;
  w.o.flush_interval = 1s;
  cost_per_row(w, 200us);  // 100 rows fit in 20 ms
  w.legacy_with_rows(3000);
  const auto r = w.run();
  EXPECT_EQ(r.counts.rows_rewritten, 3000U);
  const auto& sizes = w.rows.statement_rows;
  ASSERT_GE(sizes.size(), 5U);
  EXPECT_EQ(sizes[0], 500U);
  EXPECT_EQ(sizes[1], 250U);  // at most half as many per statement
  EXPECT_NEAR(static_cast<double>(sizes[sizes.size() - 2]), 100.0, 25.0);
  w.expect_invariant();
}

TEST(MigrationBatches, WithoutATargetBatchesStayFixed) {
  World w;
  w.o.concurrency = 4000;
  w.o.flush_interval = 1s;
  w.legacy_with_rows(2000);
  w.run();
  EXPECT_EQ(w.rows.statement_rows, (std::vector<std::size_t>{500, 500, 500, 500}));
}

// ---- the delete grace: the destination's LastModified is the clock ----------

namespace {

std::chrono::system_clock::time_point at(const std::string& iso) { return *parse_utc_time(iso); }

}  // namespace

TEST(MigrationGrace, KeepsWhatThisRunMovedAndALaterRunDeletesItOnceTheGraceHasPassed) {
  World w;
  w.legacy_with_rows(3);
  w.legacy("orphan.png", 9);  // no row: copied, and kept too
  w.o.delete_grace = std::chrono::hours(24);
  w.store.now = "2026-12-02T12:00:00.000Z";
  w.o.clock = [] { return at("2026-12-02T12:00:05.000Z"); };
  auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.objects_copied, 4U);
  EXPECT_EQ(r.counts.rows_rewritten, 3U);
  EXPECT_EQ(r.counts.legacy_objects_in_grace, 4U);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 0U);
  EXPECT_EQ(w.store.legacy.size(), 4U);
  EXPECT_EQ(w.store.started["restamp"], 0) << "copies made now need no restamp";

  w.o.clock = [] { return at("2026-12-03T11:59:59.000Z"); };  // a second short of the grace
  r = w.run();
  EXPECT_EQ(r.counts.legacy_objects_in_grace, 4U);
  EXPECT_EQ(w.store.legacy.size(), 4U);

  w.o.clock = [] { return at("2026-12-03T12:00:00.000Z"); };
  r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 4U);
  EXPECT_EQ(r.counts.legacy_objects_in_grace, 0U);
  EXPECT_TRUE(w.store.legacy.empty());
  w.expect_invariant();
}

TEST(MigrationGrace, ADestinationThatWasThereBeforeIsRestampedBeforeItsRowsMove) {
  World w;
  w.legacy("a.png", 1);
  w.dest("a.png", 1);  // identical, written long before (the fake's default LastModified)
  const auto id = w.row("image/a.png");
  w.legacy("b.png", 2);
  w.dest("b.png", 2);  // identical, no row: its rows left long ago; the grace has passed
  w.o.delete_grace = std::chrono::hours(1);
  w.store.now = "2026-12-02T12:00:00.000Z";
  w.o.clock = [] { return at("2026-12-02T12:00:01.000Z"); };
  // The restamp goes out before the compare-and-set.
  bool restamped_first = false;
  w.rows.before_cas = [&](const std::vector<db::CasItem>&) -> std::optional<Error> {
    restamped_first = w.store.dest.at("avatar/a.png").last_modified == "2026-12-02T12:00:00.000Z";
    return std::nullopt;
  };
  auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::Complete);
  EXPECT_TRUE(restamped_first);
  EXPECT_EQ(w.store.started["restamp"], 1);
  EXPECT_EQ(w.path(id), "avatar/a.png");
  EXPECT_EQ(r.counts.legacy_objects_in_grace, 1U);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 1U);  // b.png
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 1U);
  EXPECT_EQ(w.store.legacy.count("image/b.png"), 0U);

  // An hour after the restamp, not an hour after the old LastModified.
  w.o.clock = [] { return at("2026-12-02T12:59:00.000Z"); };
  EXPECT_EQ(w.run().counts.legacy_objects_in_grace, 1U);
  w.o.clock = [] { return at("2026-12-02T13:00:00.000Z"); };
  EXPECT_EQ(w.run().counts.legacy_objects_deleted, 1U);
  EXPECT_TRUE(w.store.legacy.empty());
  w.expect_invariant();
}

TEST(MigrationGrace, ARestampThatFailsLeavesTheRowsOnTheLegacyObject) {
  World w;
  w.legacy("a.png", 1);
  w.dest("a.png", 1);
  const auto id = w.row("image/a.png");
  w.o.delete_grace = std::chrono::hours(1);
  w.fail_every("restamp", error_of(ErrorKind::AccessDenied, "AccessDenied"));
  auto r = w.run();
  EXPECT_EQ(w.path(id), "image/a.png");
  EXPECT_EQ(w.store.legacy.count("image/a.png"), 1U);
  EXPECT_EQ(r.counts.rows_rewritten, 0U);
  EXPECT_EQ(r.counts.legacy_objects_deleted, 0U);
  w.expect_invariant();
}

TEST(MigrationGrace, KeepSourceRestampsTooSoALaterGraceCountsFromTheRewrite) {
  World w;
  w.legacy("a.png", 1);
  w.dest("a.png", 1);
  w.row("image/a.png");
  w.o.keep_source = true;
  auto r = w.run();
  EXPECT_EQ(w.store.started["restamp"], 1);
  EXPECT_EQ(r.counts.legacy_objects_kept, 1U);
}

// ---- shards: N workers split the names; together they do what one run does ----

namespace {

// A mixed world of n names: copies with rows, orphans, identical and
// different destinations, rows whose object is gone, dangling rows.
void mixed_world(World& w, int n) {
  for (int i = 0; i < n; ++i) {
    const auto name = fmt::format("m-{:04}.png", i);
    switch (i % 6) {
      case 0:
        w.legacy(name, i);
        w.row("image/" + name);
        w.row("image/" + name);
        break;
      case 1:
        w.legacy(name, i);
        break;  // an orphan
      case 2:
        w.legacy(name, i);
        w.dest(name, i);
        w.row("image/" + name);
        break;  // already in place
      case 3:
        w.legacy(name, i);
        w.dest(name, i + 1);
        w.row("image/" + name);
        break;  // a conflict
      case 4:
        w.dest(name, i);
        w.row("image/" + name);
        break;  // legacy gone: repair
      case 5:
        w.row("image/" + name);
        break;  // dangling
    }
  }
}

Counts sum(const std::vector<Counts>& parts) {
  Counts t;
  for (const auto& c : parts) {
    t.legacy_rows_found += c.legacy_rows_found;
    t.legacy_objects_listed += c.legacy_objects_listed;
    t.rows_rewritten += c.rows_rewritten;
    t.objects_copied += c.objects_copied;
    t.objects_already_in_place += c.objects_already_in_place;
    t.orphan_objects_moved += c.orphan_objects_moved;
    t.dangling_rows += c.dangling_rows;
    t.conflicts += c.conflicts;
    t.legacy_objects_deleted += c.legacy_objects_deleted;
  }
  return t;
}

}  // namespace

// migrate --rollback runs with the prefixes the other way round: the
// engine's "legacy" side is the production bucket, its destination the
// legacy one.
TEST(MigrationRollback, RowsGoBackOntoIdenticalLegacyObjectsAndNothingElseChanges) {
  World w;
  w.o.legacy_prefix = "avatar/";
  w.o.dest_prefix = "image/";
  w.o.rewrite_only = true;
  w.o.keep_source = true;
  w.o.delete_grace = std::chrono::hours(1);  // never a restamp, grace or not
  auto both = [&](const std::string& name, int prod, int legacy) {
    w.store.legacy["avatar/" + name] = {md5_etag(prod), 100, ""};
    w.store.dest["image/" + name] = {md5_etag(legacy), 100, ""};
  };
  both("moved.png", 1, 1);  // copied by the forward run, legacy kept
  const auto moved = w.row("avatar/moved.png");
  const auto twice = w.row("avatar/moved.png");
  w.store.legacy["avatar/new.png"] = {md5_etag(2), 100, ""};  // written by the application since
  const auto fresh = w.row("avatar/new.png");
  both("changed.png", 3, 4);  // the application replaced it since
  const auto changed = w.row("avatar/changed.png");
  both("orphan.png", 5, 5);                    // no row: nothing to do
  const auto gone = w.row("avatar/gone.png");  // no object anywhere
  const auto before = std::make_pair(w.store.legacy.size(), w.store.dest.size());

  const auto r = w.run();
  EXPECT_EQ(r.result.outcome, Outcome::NeedsHuman);  // the dangling row, as in any run
  EXPECT_EQ(w.path(moved), "image/moved.png");
  EXPECT_EQ(w.path(twice), "image/moved.png");
  EXPECT_EQ(w.path(fresh), "avatar/new.png");
  EXPECT_EQ(w.path(changed), "avatar/changed.png");
  EXPECT_EQ(w.path(gone), "avatar/gone.png");
  EXPECT_EQ(r.counts.rows_rewritten, 2U);
  EXPECT_EQ(r.counts.rows_kept, 2U);
  EXPECT_EQ(r.counts.dangling_rows, 1U);
  EXPECT_EQ(r.counts.conflicts, 0U);
  EXPECT_EQ(r.kinds(), std::vector<std::string>{"dangling_row"});
  // Nothing copied, restamped or deleted: both buckets as they were.
  EXPECT_EQ(std::make_pair(w.store.legacy.size(), w.store.dest.size()), before);
  for (const char* op : {"copy", "multipart_copy", "stream_copy", "restamp", "delete_objects", "delete_object"})
    EXPECT_EQ(w.store.started[op], 0) << op;
  EXPECT_EQ(w.store.violations, std::vector<std::string>{});
  EXPECT_EQ(w.rows.violations, std::vector<std::string>{});
}

TEST(MigrationShards, FourShardsTogetherDoExactlyWhatOneRunDoes) {
  World one;
  mixed_world(one, 240);
  const auto whole = one.run();

  World four;
  mixed_world(four, 240);
  std::vector<Counts> parts;
  for (std::uint32_t k = 0; k < 4; ++k) {
    four.o.shard = Shard{k, 4};
    const auto r = four.run();
    EXPECT_GT(r.counts.legacy_rows_found, 20U) << "shard " << k << " got a fair share";
    parts.push_back(r.counts);
  }
  const Counts total = sum(parts);
  EXPECT_EQ(total.legacy_rows_found, whole.counts.legacy_rows_found);
  EXPECT_EQ(total.legacy_objects_listed, whole.counts.legacy_objects_listed);
  EXPECT_EQ(total.rows_rewritten, whole.counts.rows_rewritten);
  EXPECT_EQ(total.objects_copied, whole.counts.objects_copied);
  EXPECT_EQ(total.objects_already_in_place, whole.counts.objects_already_in_place);
  EXPECT_EQ(total.orphan_objects_moved, whole.counts.orphan_objects_moved);
  EXPECT_EQ(total.dangling_rows, whole.counts.dangling_rows);
  EXPECT_EQ(total.conflicts, whole.counts.conflicts);
  EXPECT_EQ(total.legacy_objects_deleted, whole.counts.legacy_objects_deleted);
  EXPECT_EQ(four.rows.rows, one.rows.rows);
  EXPECT_EQ(four.store.legacy.size(), one.store.legacy.size());
  EXPECT_EQ(four.store.dest.size(), one.store.dest.size());
  EXPECT_EQ(four.store.started["copy"], one.store.started["copy"]);  // no name copied twice
  four.expect_invariant();
}

TEST(MigrationShards, ARunWithAnotherNAfterAPartialOneEndsExact) {
  World one;
  mixed_world(one, 240);
  one.run();

  World w;
  mixed_world(w, 240);
  for (std::uint32_t k : {0U, 2U}) {  // two of four shards ran, then the operator chose three
    w.o.shard = Shard{k, 4};
    w.run();
  }
  const int copies_before = w.store.started["copy"];
  for (std::uint32_t k = 0; k < 3; ++k) {
    w.o.shard = Shard{k, 3};
    w.run();
  }
  EXPECT_EQ(w.rows.rows, one.rows.rows);
  EXPECT_EQ(w.store.legacy.size(), one.store.legacy.size());
  EXPECT_EQ(w.store.dest.size(), one.store.dest.size());
  EXPECT_EQ(w.store.started["copy"], one.store.started["copy"]);  // what the first shards did is not redone
  EXPECT_GT(copies_before, 0);
  w.expect_invariant();
}

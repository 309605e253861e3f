// The operator's control file: its directives, and the files as polled.
#include "cli/control.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

using assetmv::cli::Control;
using assetmv::cli::ControlFiles;
using assetmv::cli::parse_control;

TEST(ControlFile, PauseAndMaxRateInAnySpelling) {
  auto c = parse_control("# steering\npause\nmax-rate 500\n", "ctl");
  EXPECT_TRUE(c.paused);
  EXPECT_EQ(c.pause_reason, "ctl line 2: pause");
  EXPECT_EQ(c.max_rate, 500.0);
  EXPECT_TRUE(c.problems.empty());
  EXPECT_EQ(parse_control("max-rate=25.5", "ctl").max_rate, 25.5);
  EXPECT_EQ(parse_control("  max-rate = 0  # no cap\r\n", "ctl").max_rate, 0.0);
  EXPECT_EQ(parse_control("", "ctl"), Control{});
  EXPECT_FALSE(parse_control("# pause\n", "ctl").paused);
}

TEST(ControlFile, ALineItCannotReadIsReportedAndIgnored) {
  auto c = parse_control("pause now\nmax-rate fast\nmax-rate -3\nresume\nmax-rate 9\n", "ctl");
  EXPECT_FALSE(c.paused);
  EXPECT_EQ(c.max_rate, 9.0);
  ASSERT_EQ(c.problems.size(), 4U);
  EXPECT_NE(c.problems[0].find("ctl line 1"), std::string::npos);
  EXPECT_NE(c.problems[3].find("\"resume\""), std::string::npos);
}

TEST(ControlFile, FilesArePolledAndAnAbsentFileMeansRun) {
  const auto dir = std::filesystem::temp_directory_path() / ("assetmv-control-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto ctl = (dir / "control").string();
  const auto flag = (dir / "pause").string();
  ControlFiles files(ctl, flag);
  EXPECT_FALSE(files.poll().paused);
  std::ofstream(flag).close();  // gh-ost's convention: the file's existence pauses
  auto c = files.poll();
  EXPECT_TRUE(c.paused);
  EXPECT_EQ(c.pause_reason, flag + " exists");
  std::filesystem::remove(flag);
  EXPECT_FALSE(files.poll().paused);
  std::ofstream(ctl) << "max-rate 40\nbogus\n";
  c = files.poll();
  EXPECT_EQ(c.max_rate, 40.0);
  EXPECT_EQ(c.problems.size(), 1U);
  EXPECT_TRUE(files.poll().problems.empty());  // reported once, not every poll
  EXPECT_EQ(files.poll().max_rate, 40.0);
  std::ofstream(ctl) << "pause\n";
  EXPECT_TRUE(files.poll().paused);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(files.poll(), Control{});
}

// One ConfigMap steers every shard, or one: "shard K:" lines apply to
// shard K alone, and a shard's own max-rate is its own rate.
TEST(ControlFile, ShardLinesApplyToTheirShardAlone) {
  const std::string text = "max-rate 800\nshard 3: pause\nshard 5: max-rate 40\n";
  auto three = parse_control(text, "ctl", 3, 8);
  EXPECT_TRUE(three.paused);
  EXPECT_EQ(three.pause_reason, "ctl line 2: shard 3: pause");
  EXPECT_EQ(three.max_rate, 800.0);
  EXPECT_FALSE(three.shard_max_rate);
  auto five = parse_control(text, "ctl", 5, 8);
  EXPECT_FALSE(five.paused);
  EXPECT_EQ(five.shard_max_rate, 40.0);
  EXPECT_TRUE(five.problems.empty());
  auto zero = parse_control(text, "ctl", 0, 8);
  EXPECT_FALSE(zero.paused);
  EXPECT_FALSE(zero.shard_max_rate);
  // A shard this run does not have, or a shard line that cannot be read, is a problem (and ignored).
  auto odd = parse_control("shard 8: pause\nshard x: pause\nshard 2 pause\nshard 2: stop\n", "ctl", 2, 8);
  EXPECT_FALSE(odd.paused);
  ASSERT_EQ(odd.problems.size(), 4U);
  EXPECT_NE(odd.problems[0].find("K from 0 to 7"), std::string::npos);
  EXPECT_NE(odd.problems[3].find("\"shard 2: stop\""), std::string::npos);
  // Without shards, shard 0 is the whole run.
  EXPECT_TRUE(parse_control("shard 0: pause", "ctl").paused);
}

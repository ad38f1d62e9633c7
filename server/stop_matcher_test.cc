#include "server/stop_matcher.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace slabserve::server {
namespace {

// Feeds `pieces` one by one; returns everything emitted, Flush included
// when no stop string was found.
std::string FeedAll(StopMatcher& matcher,
                    const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& piece : pieces) out += matcher.Feed(piece);
  if (!matcher.stopped()) out += matcher.Flush();
  return out;
}

TEST(StopMatcherTest, NoStopsPassesEverythingThrough) {
  StopMatcher matcher({});
  EXPECT_EQ(matcher.Feed("hello"), "hello");
  EXPECT_EQ(matcher.Feed(" world"), " world");
  EXPECT_FALSE(matcher.stopped());
}

TEST(StopMatcherTest, StopInsideOnePieceCutsBeforeIt) {
  StopMatcher matcher({"END"});
  EXPECT_EQ(matcher.Feed("abcENDdef"), "abc");
  EXPECT_TRUE(matcher.stopped());
  EXPECT_EQ(matcher.Feed("more"), "");
}

TEST(StopMatcherTest, StopSplitAcrossPiecesIsHeldBackThenDropped) {
  StopMatcher matcher({"END"});
  EXPECT_EQ(matcher.Feed("abcE"), "abc");
  EXPECT_EQ(matcher.Feed("N"), "");
  EXPECT_EQ(matcher.Feed("Dxyz"), "");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcherTest, FalseStartIsReleased) {
  StopMatcher matcher({"END"});
  EXPECT_EQ(matcher.Feed("abEN"), "ab");
  EXPECT_EQ(matcher.Feed("x"), "ENx");
  EXPECT_FALSE(matcher.stopped());
}

TEST(StopMatcherTest, HeldTextIsFlushedAtTheEnd) {
  StopMatcher matcher({"END"});
  EXPECT_EQ(FeedAll(matcher, {"ab", "EN"}), "abEN");
}

TEST(StopMatcherTest, EarliestOfSeveralStopsWins) {
  StopMatcher matcher({"world", "lo"});
  EXPECT_EQ(FeedAll(matcher, {"hel", "lo world"}), "hel");
}

TEST(StopMatcherTest, OverlappingPrefixesFindTheLaterMatch) {
  // "aab": the held "aa" must keep both candidate starts.
  StopMatcher matcher({"ab"});
  EXPECT_EQ(FeedAll(matcher, {"a", "a", "b"}), "a");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcherTest, MultiByteStopStrings) {
  StopMatcher matcher({"\xC3\xA9t\xC3\xA9"});  // "été"
  EXPECT_EQ(FeedAll(matcher, {"un \xC3\xA9", "t", "\xC3\xA9 chaud"}), "un ");
}

}  // namespace
}  // namespace slabserve::server

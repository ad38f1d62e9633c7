#include "server/api_keys.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve::server {
namespace {

using ::testing::HasSubstr;

std::string WriteTemp(const std::string& name, const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ApiKeysTest, LoadsKeysSkippingBlankLinesAndComments) {
  absl::StatusOr<ApiKeys> keys = ApiKeys::Load(WriteTemp(
      "keys", "# team A\n0123456789abcdef\n\n  fedcba9876543210  \n"));
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_TRUE(keys->Matches("0123456789abcdef"));
  EXPECT_TRUE(keys->Matches("fedcba9876543210"));
  EXPECT_FALSE(keys->Matches("0123456789abcdeF"));
  EXPECT_FALSE(keys->Matches("0123456789abcde"));    // a prefix
  EXPECT_FALSE(keys->Matches("0123456789abcdef0"));  // a longer one
  EXPECT_FALSE(keys->Matches(""));
}

TEST(ApiKeysTest, BadFilesAreRefusedWithTheReason) {
  EXPECT_THAT(ApiKeys::Load("/no/such/keys").status().message(),
              HasSubstr("cannot be opened"));
  EXPECT_THAT(
      ApiKeys::Load(WriteTemp("empty", "# none\n\n")).status().message(),
      HasSubstr("holds no key"));
  EXPECT_THAT(ApiKeys::Load(WriteTemp("short", "0123456789abcdef\nshort\n"))
                  .status()
                  .message(),
              HasSubstr("line 2: a key must be 16 to 4096 characters"));
}

}  // namespace
}  // namespace slabserve::server

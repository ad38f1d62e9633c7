// The generated API round-trips through the wire format.
#include <gtest/gtest.h>

#include "slabserve/v1/slabserve.pb.h"

namespace slabserve {
namespace {

TEST(ProtoTest, GenerateRequestRoundTrips) {
  v1::GenerateRequest request;
  request.set_text("In the beginning");
  request.set_max_tokens(16);
  request.mutable_sampling()->set_temperature(0.7f);
  request.add_stop_token_ids(1);
  std::string wire;
  ASSERT_TRUE(request.SerializeToString(&wire));
  v1::GenerateRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.text(), "In the beginning");
  EXPECT_EQ(parsed.prompt_case(), v1::GenerateRequest::kText);
  EXPECT_FLOAT_EQ(parsed.sampling().temperature(), 0.7f);
  EXPECT_EQ(parsed.stop_token_ids(0), 1);
}

}  // namespace
}  // namespace slabserve

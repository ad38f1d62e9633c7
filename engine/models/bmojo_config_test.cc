#include "gtest/gtest.h"
TEST(BmojoConfigTest, Placeholder) {}

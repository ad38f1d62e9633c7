#include "engine/io/safetensors.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve {
namespace {

using ::slabserve::testing::MakeTempDir;
using ::slabserve::testing::RawTensor;
using ::slabserve::testing::SafetensorsImage;
using ::slabserve::testing::WriteFile;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string F32Bytes(const std::vector<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// Writes `image` to a fresh file and returns the error from opening it.
std::string OpenError(const std::string& test, const std::string& image,
                      std::string* path_out = nullptr) {
  const std::string path = MakeTempDir(test) + "/bad.safetensors";
  WriteFile(path, image);
  if (path_out != nullptr) *path_out = path;
  auto file = SafetensorsFile::Open(path);
  EXPECT_FALSE(file.ok());
  return file.ok() ? "" : std::string(file.status().message());
}

TEST(SafetensorsTest, ReadsTensorsAndSkipsMetadata) {
  const std::string path = MakeTempDir("reads") + "/ok.safetensors";
  WriteFile(path,
            SafetensorsImage({{"a", "F32", {2, 2}, F32Bytes({1, 2, 3, 4})},
                              {"b", "BF16", {3}, std::string(6, '\0')},
                              {"c", "F16", {0}, ""}}));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const auto& tensors = (*file)->tensors();
  ASSERT_EQ(tensors.size(), 3u);
  EXPECT_EQ(tensors.count("__metadata__"), 0u);
  const TensorEntry& a = tensors.at("a");
  EXPECT_EQ(a.dtype, TensorDType::kF32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 2}));
  ASSERT_EQ(a.nbytes, 16u);
  float values[4];
  std::memcpy(values, a.data, 16);
  EXPECT_EQ(values[3], 4.0f);
  EXPECT_EQ(tensors.at("b").dtype, TensorDType::kBF16);
  EXPECT_EQ(tensors.at("b").nbytes, 6u);
  EXPECT_EQ(tensors.at("c").nbytes, 0u);
  EXPECT_STREQ(TensorDTypeName(TensorDType::kF16), "F16");
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  auto file = SafetensorsFile::Open(MakeTempDir("missing") + "/none");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr("none: cannot open"));
}

TEST(SafetensorsTest, TruncatedFile) {
  std::string path;
  EXPECT_THAT(OpenError("truncated", "abc", &path),
              AllOf(HasSubstr(path), HasSubstr("truncated")));
}

TEST(SafetensorsTest, HeaderLengthPastEndOfFile) {
  std::string image = SafetensorsImage("{}", "");
  image[0] = 100;
  std::string path;
  EXPECT_THAT(OpenError("header_past_eof", image, &path),
              AllOf(HasSubstr(path), HasSubstr("header length 100"),
                    HasSubstr("past the end")));
  // A length near 2^64 must not wrap around.
  std::memset(image.data(), 0xff, 8);
  EXPECT_THAT(OpenError("header_huge", image), HasSubstr("past the end"));
}

TEST(SafetensorsTest, HeaderNotJson) {
  std::string path;
  EXPECT_THAT(OpenError("not_json", SafetensorsImage("{\"a\": [", ""), &path),
              AllOf(HasSubstr(path), HasSubstr("not valid JSON")));
  EXPECT_THAT(OpenError("not_object", SafetensorsImage("[1, 2]", "")),
              HasSubstr("not a JSON object"));
}

TEST(SafetensorsTest, OffsetsOutOfRange) {
  const std::string header =
      R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})";
  std::string path;
  EXPECT_THAT(OpenError("offsets",
                        SafetensorsImage(header, std::string(16, 'x')), &path),
              AllOf(HasSubstr(path), HasSubstr("tensor 'w'"),
                    HasSubstr("past the end of the data")));
}

TEST(SafetensorsTest, BeginAfterEnd) {
  const std::string header =
      R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})";
  EXPECT_THAT(
      OpenError("begin_end", SafetensorsImage(header, std::string(8, 'x'))),
      AllOf(HasSubstr("tensor 'w'"), HasSubstr("begin > end")));
}

TEST(SafetensorsTest, SizeMismatchWithShape) {
  const std::string header =
      R"({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 8]}})";
  EXPECT_THAT(OpenError("size", SafetensorsImage(header, std::string(8, 'x'))),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("hold 8 bytes"),
                    HasSubstr("needs 12")));
}

TEST(SafetensorsTest, UnknownDType) {
  const std::string header =
      R"({"w": {"dtype": "I8", "shape": [4], "data_offsets": [0, 4]}})";
  std::string path;
  EXPECT_THAT(OpenError("dtype", SafetensorsImage(header, "abcd"), &path),
              AllOf(HasSubstr(path), HasSubstr("tensor 'w'"),
                    HasSubstr("unsupported dtype I8")));
}

TEST(SafetensorsTest, BadShapes) {
  const std::string negative =
      R"({"w": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 0]}})";
  EXPECT_THAT(OpenError("negative", SafetensorsImage(negative, "")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("non-negative")));
  const std::string fractional =
      R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 0]}})";
  EXPECT_THAT(OpenError("fractional", SafetensorsImage(fractional, "")),
              HasSubstr("non-negative integers"));
  // The product overflows 64 bits; it must be rejected, not wrapped to 0.
  const std::string overflow =
      R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4],)"
      R"( "data_offsets": [0, 0]}})";
  EXPECT_THAT(OpenError("overflow", SafetensorsImage(overflow, "")),
              AllOf(HasSubstr("tensor 'w'"), HasSubstr("too large")));
}

TEST(SafetensorsTest, MalformedEntries) {
  EXPECT_THAT(OpenError("entry", SafetensorsImage(R"({"w": 3})", "")),
              HasSubstr("tensor 'w': entry is not a JSON object"));
  EXPECT_THAT(
      OpenError("no_dtype",
                SafetensorsImage(
                    R"({"w": {"shape": [], "data_offsets": [0, 4]}})", "abcd")),
      HasSubstr("missing string 'dtype'"));
  EXPECT_THAT(
      OpenError(
          "offsets_shape",
          SafetensorsImage(
              R"({"w": {"dtype": "F32", "shape": [], "data_offsets": [0]}})",
              "abcd")),
      HasSubstr("'data_offsets' must be an array [begin, end]"));
  EXPECT_THAT(
      OpenError("offsets_negative",
                SafetensorsImage(R"({"w": {"dtype": "F32", "shape": [],)"
                                 R"( "data_offsets": [-4, 0]}})",
                                 "abcd")),
      HasSubstr("non-negative integers"));
}

}  // namespace
}  // namespace slabserve

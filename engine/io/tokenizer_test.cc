#include "engine/io/tokenizer.h"

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slabserve {
namespace {

using ::testing::HasSubstr;

constexpr char kModel[] = "tests/golden/tokenizer/tokenizer.model";
constexpr char kCases[] = "tests/golden/tokenizer/cases.json";
constexpr char kReplacementChar[] = "\xEF\xBF\xBD";

// Strict UTF-8 check (no overlongs, surrogates or code points past U+10FFFF).
bool IsValidUtf8(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = text[i];
    int extra;
    uint32_t code;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char cc = text[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tokenizer = Tokenizer::Load(kModel);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer);
    golden_ = nlohmann::json::parse(testing::ReadFile(kCases));
    ASSERT_GE(golden_["cases"].size(), 30u);
  }

  int32_t PieceId(const std::string& piece) const {
    for (const auto& entry : golden_["pieces_table"]) {
      if (entry["piece"] == piece) return entry["id"].get<int32_t>();
    }
    ADD_FAILURE() << "no piece " << piece;
    return 0;
  }

  // Streams `ids` through an IncrementalDetokenizer, checking each delta.
  std::string Stream(const std::vector<int32_t>& ids) const {
    IncrementalDetokenizer detokenizer(tokenizer_.get());
    std::string text;
    for (size_t i = 0; i < ids.size(); ++i) {
      auto delta = detokenizer.Add(ids[i]);
      EXPECT_TRUE(delta.ok()) << delta.status();
      if (!delta.ok()) return text;
      EXPECT_TRUE(IsValidUtf8(*delta)) << "delta after id #" << i;
      text += *delta;
    }
    const std::string rest = detokenizer.Flush();
    EXPECT_TRUE(IsValidUtf8(rest));
    return text + rest;
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  nlohmann::json golden_;
};

TEST_F(TokenizerTest, SpecialIds) {
  EXPECT_EQ(tokenizer_->vocab_size(), 512);
  EXPECT_EQ(tokenizer_->pad_id(), 0);
  EXPECT_EQ(tokenizer_->eos_id(), 1);
  EXPECT_EQ(tokenizer_->bos_id(), 2);
}

TEST_F(TokenizerTest, GoldenCasesExact) {
  for (const auto& c : golden_["cases"]) {
    const std::string text = c["text"];
    SCOPED_TRACE(text);
    const auto expected_ids = c["ids"].get<std::vector<int32_t>>();
    auto ids = tokenizer_->Encode(text);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, expected_ids);
    auto pieces = tokenizer_->EncodePieces(text);
    ASSERT_TRUE(pieces.ok()) << pieces.status();
    EXPECT_EQ(*pieces, c["pieces"].get<std::vector<std::string>>());
    auto decoded = tokenizer_->Decode(expected_ids);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, c["decoded"].get<std::string>());
    if (c["roundtrip_exact"].get<bool>()) {
      EXPECT_EQ(*decoded, text);
    }
    auto with_bos =
        tokenizer_->Decode(c["ids_with_bos"].get<std::vector<int32_t>>());
    ASSERT_TRUE(with_bos.ok());
    EXPECT_EQ(*with_bos, *decoded);
  }
}

TEST_F(TokenizerTest, IncrementalMatchesFullDecodeForEveryCase) {
  int cases_with_byte_pieces = 0;
  for (const auto& c : golden_["cases"]) {
    SCOPED_TRACE(c["text"].get<std::string>());
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(Stream(ids), c["decoded"].get<std::string>());
    for (const auto& piece : c["pieces"]) {
      if (piece.get<std::string>().rfind("<0x", 0) == 0) {
        ++cases_with_byte_pieces;
        break;
      }
    }
  }
  // The emoji cases split characters into byte-fallback pieces.
  EXPECT_GE(cases_with_byte_pieces, 2);
}

TEST_F(TokenizerTest, IncrementalHoldsBackSplitCharacter) {
  // U+1F600 as four byte-fallback pieces.
  const std::vector<int32_t> ids = {PieceId("<0xF0>"), PieceId("<0x9F>"),
                                    PieceId("<0x98>"), PieceId("<0x80>")};
  IncrementalDetokenizer detokenizer(tokenizer_.get());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*detokenizer.Add(ids[i]), "");
  EXPECT_EQ(*detokenizer.Add(ids[3]), "\xF0\x9F\x98\x80");
  EXPECT_EQ(detokenizer.Flush(), "");

  // An incomplete character at the end comes out of Flush as U+FFFD, as in
  // a full decode.
  IncrementalDetokenizer truncated(tokenizer_.get());
  EXPECT_EQ(*truncated.Add(PieceId("a")), "a");
  EXPECT_EQ(*truncated.Add(ids[0]), "");
  EXPECT_EQ(*truncated.Add(ids[1]), "");
  EXPECT_EQ(truncated.Flush(),
            std::string(kReplacementChar) + kReplacementChar);
  EXPECT_EQ(*tokenizer_->Decode({PieceId("a"), ids[0], ids[1]}),
            std::string("a") + kReplacementChar + kReplacementChar);
}

TEST_F(TokenizerTest, IncrementalLongTextUsesWindowCorrectly) {
  // Far longer than the decode window, mixing scripts and byte fallback.
  std::string text;
  for (int round = 0; round < 8; ++round) {
    for (const auto& c : golden_["cases"]) text += c["text"].get<std::string>();
  }
  auto ids = tokenizer_->Encode(text);
  ASSERT_TRUE(ids.ok());
  ASSERT_GT(ids->size(), 2000u);
  EXPECT_EQ(Stream(*ids), *tokenizer_->Decode(*ids));
}

TEST_F(TokenizerTest, IncrementalRandomIdsMatchFullDecode) {
  // Random ids mix control, byte and text pieces, including invalid byte
  // sequences that decode to U+FFFD.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> any_id(0, 511);
  // Byte pieces are frequent enough to form multi-byte characters.
  std::uniform_int_distribution<int32_t> byte_value(0x80, 0xF4);
  std::vector<int32_t> ids;
  for (int i = 0; i < 3000; ++i) {
    if (rng() % 3 == 0) {
      char piece[8];
      std::snprintf(piece, sizeof(piece), "<0x%02X>", byte_value(rng));
      ids.push_back(PieceId(piece));
    } else {
      ids.push_back(any_id(rng));
    }
  }
  EXPECT_EQ(Stream(ids), *tokenizer_->Decode(ids));
}

TEST_F(TokenizerTest, RejectsIdsOutsideVocabulary) {
  auto decoded = tokenizer_->Decode({5, 512});
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(decoded.status().message(), HasSubstr("token id 512"));
  auto negative = tokenizer_->Decode({-1});
  ASSERT_FALSE(negative.ok());
  EXPECT_THAT(negative.status().message(), HasSubstr("token id -1"));

  IncrementalDetokenizer detokenizer(tokenizer_.get());
  EXPECT_EQ(*detokenizer.Add(PieceId("H")), "H");
  auto bad = detokenizer.Add(100000);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("token id 100000"));
  EXPECT_EQ(*detokenizer.Add(PieceId("e")), "e");
}

TEST(TokenizerLoadTest, ErrorsNameTheFile) {
  const std::string dir = testing::MakeTempDir("tokenizer_load");
  auto missing = Tokenizer::Load(dir + "/absent.model");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("absent.model"));
  testing::WriteFile(dir + "/garbage.model", "this is not a model");
  auto garbage = Tokenizer::Load(dir + "/garbage.model");
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(garbage.status().message(),
              HasSubstr("garbage.model: not a SentencePiece model"));
}

}  // namespace
}  // namespace slabserve

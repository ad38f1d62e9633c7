#include "server/chat_template.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slabserve::server {
namespace {

using ::testing::HasSubstr;

TEST(ChatTemplateTest, RendersMessagesThenTheAssistantCue) {
  absl::StatusOr<ChatTemplate> chat =
      ChatTemplate::FromFormat("<{role}>{content}</s>");
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(chat->Render({{"system", "be brief"}, {"user", "hi {role}"}}),
            "<system>be brief</s><user>hi {role}</s><assistant>");
  EXPECT_EQ(ChatTemplate::Default().Render({{"user", "In the beginning"}}),
            "user: In the beginning\nassistant: ");
}

TEST(ChatTemplateTest, RejectsJinjaAndFormatsWithoutContent) {
  EXPECT_FALSE(ChatTemplate::FromFormat("{% for m in messages %}").ok());
  EXPECT_FALSE(ChatTemplate::FromFormat("{{ messages }}").ok());
  EXPECT_FALSE(ChatTemplate::FromFormat("{role}:").ok());
}

std::string NewModelDir(const std::string& name) {
  std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  mkdir(dir.c_str(), 0755);
  return dir;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(ChatTemplateTest, LoadsTheModelsOwnTemplateFirst) {
  std::string dir = NewModelDir("own");
  WriteFile(dir + "/config.json", R"({"chat_template": "{role}| {content}"})");
  WriteFile(dir + "/chat_template.json",
            R"({"chat_template": "[{role}] {content}\n"})");
  LoadedChatTemplate loaded = LoadChatTemplate(dir);
  EXPECT_EQ(loaded.chat_template.format(), "[{role}] {content}\n");
  EXPECT_EQ(loaded.origin, "chat_template.json");
}

TEST(ChatTemplateTest, FallsBackFromJinjaWithAReason) {
  std::string dir = NewModelDir("jinja");
  WriteFile(
      dir + "/tokenizer_config.json",
      R"({"chat_template": "{% for m in messages %}{{ m }}{% endfor %}"})");
  LoadedChatTemplate loaded = LoadChatTemplate(dir);
  EXPECT_EQ(loaded.chat_template.format(), ChatTemplate::kDefaultFormat);
  EXPECT_THAT(loaded.origin, HasSubstr("Jinja"));
  EXPECT_THAT(LoadChatTemplate(NewModelDir("empty")).origin,
              HasSubstr("default"));
}

}  // namespace
}  // namespace slabserve::server

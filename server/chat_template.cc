#include "server/chat_template.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace slabserve::server {

absl::StatusOr<ChatTemplate> ChatTemplate::FromFormat(
    const std::string& format) {
  if (absl::StrContains(format, "{%") || absl::StrContains(format, "{{")) {
    return absl::InvalidArgumentError(
        "Jinja chat templates are not supported (only {role}/{content} "
        "formats)");
  }
  if (!absl::StrContains(format, "{content}")) {
    return absl::InvalidArgumentError(
        "a chat template needs a {content} placeholder");
  }
  return ChatTemplate(format);
}

ChatTemplate ChatTemplate::Default() { return ChatTemplate(kDefaultFormat); }

std::string ChatTemplate::Render(
    const std::vector<ChatMessage>& messages) const {
  std::string prompt;
  for (const ChatMessage& message : messages) {
    // One pass, so a message's own "{content}" text stays literal.
    absl::StrAppend(&prompt, absl::StrReplaceAll(
                                 format_, {{"{role}", message.role},
                                           {"{content}", message.content}}));
  }
  const std::string cue = format_.substr(0, format_.find("{content}"));
  absl::StrAppend(&prompt, absl::StrReplaceAll(cue, {{"{role}", "assistant"}}));
  return prompt;
}

LoadedChatTemplate LoadChatTemplate(const std::string& model_dir) {
  for (const char* name :
       {"chat_template.json", "tokenizer_config.json", "config.json"}) {
    const std::string path = absl::StrCat(model_dir, "/", name);
    std::ifstream file(path);
    if (!file) continue;
    std::stringstream text;
    text << file.rdbuf();
    nlohmann::json json =
        nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (!json.is_object() || !json.contains("chat_template")) continue;
    if (!json["chat_template"].is_string()) {
      return {ChatTemplate::Default(),
              absl::StrCat(name,
                           ": chat_template is not a string; using the "
                           "default format")};
    }
    absl::StatusOr<ChatTemplate> parsed =
        ChatTemplate::FromFormat(json["chat_template"].get<std::string>());
    if (!parsed.ok()) {
      return {ChatTemplate::Default(),
              absl::StrCat(name, ": ", parsed.status().message(),
                           "; using the default format")};
    }
    return {*std::move(parsed), name};
  }
  return {ChatTemplate::Default(), "none in the model; the default format"};
}

}  // namespace slabserve::server

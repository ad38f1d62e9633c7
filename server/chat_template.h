// Chat messages to one prompt, with a Jinja-free template: a format string
// with "{role}" and "{content}" placeholders, rendered once per message and
// then once more for the assistant up to "{content}" (the cue the model
// answers). Models that carry a Jinja template are served with the default
// format instead: running Jinja is out of scope.
#ifndef SLABSERVE_SERVER_CHAT_TEMPLATE_H_
#define SLABSERVE_SERVER_CHAT_TEMPLATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace slabserve::server {

struct ChatMessage {
  std::string role;
  std::string content;
};

class ChatTemplate {
 public:
  static constexpr char kDefaultFormat[] = "{role}: {content}\n";

  // INVALID_ARGUMENT when "{content}" is missing or the text is Jinja.
  static absl::StatusOr<ChatTemplate> FromFormat(const std::string& format);
  static ChatTemplate Default();

  std::string Render(const std::vector<ChatMessage>& messages) const;
  const std::string& format() const { return format_; }

 private:
  explicit ChatTemplate(std::string format) : format_(std::move(format)) {}

  std::string format_;
};

struct LoadedChatTemplate {
  ChatTemplate chat_template;
  std::string origin;  // for the startup log: where it came from, or why not
};

// The first "chat_template" string in model_dir's chat_template.json,
// tokenizer_config.json or config.json; the default format when there is
// none or it is unsupported (the origin says which).
LoadedChatTemplate LoadChatTemplate(const std::string& model_dir);

}  // namespace slabserve::server

#endif  // SLABSERVE_SERVER_CHAT_TEMPLATE_H_

// slabctl: command-line client for a slabserve server.
//
//   slabctl [--target=HOST:PORT] generate --prompt "text" [--max_tokens=N] ...
//   slabctl tokenize --text "text"
//   slabctl detokenize --ids=1,2,3
//   slabctl info
//   slabctl health
//
// Exit status: 0 on success, 1 when the server call fails (unreachable,
// rejected, not serving), 2 for bad usage.
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clients/cpp/client.h"
#include "clients/cpp/security_flags.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Server address HOST:PORT.");
ABSL_FLAG(double, timeout, 0,
          "Deadline of each call in seconds (0 = none for generate, 10 s for "
          "the other commands).");
ABSL_FLAG(bool, json, false,
          "Machine-readable output: one JSON object per chunk or response.");
// generate
ABSL_FLAG(std::string, prompt, "", "generate: prompt text.");
ABSL_FLAG(std::vector<std::string>, ids, {},
          "generate: prompt token ids (instead of --prompt); detokenize: ids "
          "to turn into text.");
ABSL_FLAG(int, max_tokens, 64, "generate: tokens to produce at most.");
ABSL_FLAG(double, temperature, 0, "generate: sampling temperature (0=greedy).");
ABSL_FLAG(int, top_k, 0, "generate: top-k filter (0 = off).");
ABSL_FLAG(double, top_p, 0, "generate: nucleus filter in (0, 1] (0 = off).");
ABSL_FLAG(double, min_p, 0, "generate: min-p filter in [0, 1) (0 = off).");
ABSL_FLAG(double, repetition_penalty, 0,
          "generate: repetition penalty (0 or 1 = off).");
ABSL_FLAG(uint64_t, seed, 0, "generate: sampling seed (0 = random).");
ABSL_FLAG(int, n, 1, "generate: completions of the same prompt.");
ABSL_FLAG(std::vector<std::string>, stop, {}, "generate: stop strings.");
ABSL_FLAG(bool, ignore_eos, false, "generate: keep going past EOS.");
ABSL_FLAG(std::string, request_id, "", "generate: request id for logs.");
// tokenize
ABSL_FLAG(std::string, text, "", "tokenize: text to tokenize.");
ABSL_FLAG(bool, add_bos, false, "tokenize: prepend BOS if the model uses one.");

namespace {

using slabserve::CallOptions;
using slabserve::Client;
namespace v1 = slabserve::v1;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int UsageError(const std::string& message) {
  std::cerr << "slabctl: " << message << "\n"
            << "usage: slabctl [--target=HOST:PORT] "
               "generate|tokenize|detokenize|info|health [flags]\n"
               "run 'slabctl --help' for the flags\n";
  return kExitUsage;
}

int CallError(const Client& client, const std::string& what,
              const grpc::Status& status) {
  std::string hint;
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    hint = " (is the server running at " + client.target() + "?)";
  }
  std::cerr << "slabctl: " << what
            << " failed: " << slabserve::StatusCodeName(status.error_code())
            << ": " << status.error_message() << hint << "\n";
  return kExitFailure;
}

CallOptions UnaryOptions() {
  const double timeout = absl::GetFlag(FLAGS_timeout);
  return CallOptions::WithTimeout(timeout > 0 ? timeout : 10.0);
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  // Serializing a well-formed message cannot fail; an empty object is the
  // honest fallback if it ever did.
  if (!google::protobuf::util::MessageToJsonString(message, &out, options)
           .ok()) {
    out = "{}";
  }
  return out;
}

void PrintMessage(const google::protobuf::Message& message) {
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(message) << "\n";
    return;
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(message, &text);
  std::cout << text;
}

// Parses --ids into token ids; false (with a message) on a bad entry.
bool ParseIds(std::vector<int32_t>* ids) {
  for (const std::string& item : absl::GetFlag(FLAGS_ids)) {
    int32_t id;
    if (!absl::SimpleAtoi(item, &id) || id < 0) {
      std::cerr << "slabctl: --ids: '" << item
                << "' is not a non-negative integer\n";
      return false;
    }
    ids->push_back(id);
  }
  return true;
}

int RunGenerate(Client& client) {
  const std::string prompt = absl::GetFlag(FLAGS_prompt);
  std::vector<int32_t> ids;
  if (!ParseIds(&ids)) return kExitUsage;
  if (prompt.empty() == ids.empty()) {
    return UsageError("generate needs exactly one of --prompt or --ids");
  }
  if (absl::GetFlag(FLAGS_n) < 1) return UsageError("--n must be >= 1");
  if (absl::GetFlag(FLAGS_max_tokens) < 1) {
    return UsageError("--max_tokens must be >= 1");
  }
  v1::GenerateRequest request;
  request.set_request_id(absl::GetFlag(FLAGS_request_id));
  if (!prompt.empty()) {
    request.set_text(prompt);
  } else {
    for (int32_t id : ids) request.mutable_token_ids()->add_ids(id);
  }
  request.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  request.set_n(absl::GetFlag(FLAGS_n));
  request.set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));
  for (const std::string& stop : absl::GetFlag(FLAGS_stop)) {
    request.add_stop(stop);
  }
  v1::SamplingParams* sampling = request.mutable_sampling();
  sampling->set_temperature(absl::GetFlag(FLAGS_temperature));
  sampling->set_top_k(absl::GetFlag(FLAGS_top_k));
  sampling->set_top_p(absl::GetFlag(FLAGS_top_p));
  sampling->set_min_p(absl::GetFlag(FLAGS_min_p));
  sampling->set_repetition_penalty(absl::GetFlag(FLAGS_repetition_penalty));
  sampling->set_seed(absl::GetFlag(FLAGS_seed));

  const bool json = absl::GetFlag(FLAGS_json);
  const bool single = request.n() == 1;
  // With n > 1 the completions interleave, so they are printed one after
  // the other at the end instead of as they arrive.
  std::map<int, std::string> texts;
  std::map<int, v1::GenerateChunk> last_chunks;
  bool printed = false;
  grpc::Status status = client.Generate(
      request,
      [&](const v1::GenerateChunk& chunk) {
        if (json) {
          std::cout << ToJson(chunk) << std::endl;
        } else if (single) {
          std::cout << chunk.text() << std::flush;
          printed = true;
        } else {
          texts[chunk.index()] += chunk.text();
        }
        if (chunk.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
          last_chunks[chunk.index()] = chunk;
        }
        return true;
      },
      CallOptions::WithTimeout(absl::GetFlag(FLAGS_timeout)));
  if (!json) {
    if (printed) std::cout << "\n";
    for (const auto& [index, text] : texts) {
      std::cout << "--- completion " << index << " ---\n" << text << "\n";
    }
    for (const auto& [index, chunk] : last_chunks) {
      const v1::Usage& usage = chunk.usage();
      std::cerr << absl::StrCat(
          "[", index, "] finish=", v1::FinishReason_Name(chunk.finish_reason()),
          " prompt_tokens=", usage.prompt_tokens(),
          " completion_tokens=", usage.completion_tokens(),
          " ttft=", usage.time_to_first_token_seconds() * 1e3,
          " ms total=", usage.total_seconds() * 1e3, " ms\n");
    }
  }
  if (!status.ok()) return CallError(client, "generate", status);
  return 0;
}

int RunTokenize(Client& client) {
  v1::TokenizeRequest request;
  request.set_text(absl::GetFlag(FLAGS_text));
  if (request.text().empty()) return UsageError("tokenize needs --text");
  request.set_add_bos(absl::GetFlag(FLAGS_add_bos));
  v1::TokenizeResponse response;
  grpc::Status status = client.Tokenize(request, &response, UnaryOptions());
  if (!status.ok()) return CallError(client, "tokenize", status);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(response) << "\n";
    return 0;
  }
  std::cout << "ids: " << absl::StrJoin(response.ids(), ",") << "\n";
  std::cout << "pieces: " << absl::StrJoin(response.pieces(), " ") << "\n";
  return 0;
}

int RunDetokenize(Client& client) {
  v1::DetokenizeRequest request;
  std::vector<int32_t> ids;
  if (!ParseIds(&ids)) return kExitUsage;
  if (ids.empty()) return UsageError("detokenize needs --ids");
  for (int32_t id : ids) request.add_ids(id);
  v1::DetokenizeResponse response;
  grpc::Status status = client.Detokenize(request, &response, UnaryOptions());
  if (!status.ok()) return CallError(client, "detokenize", status);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(response) << "\n";
  } else {
    std::cout << response.text() << "\n";
  }
  return 0;
}

int RunInfo(Client& client) {
  v1::ModelInfo info;
  grpc::Status status = client.Info(&info, UnaryOptions());
  if (!status.ok()) return CallError(client, "info", status);
  PrintMessage(info);
  return 0;
}

int RunHealth(Client& client) {
  grpc::health::v1::HealthCheckResponse::ServingStatus serving;
  grpc::Status status = client.Health(&serving, "", UnaryOptions());
  if (!status.ok()) return CallError(client, "health", status);
  const std::string name = slabserve::ServingStatusName(serving);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << "{\"status\":\"" << name << "\"}\n";
  } else {
    std::cout << name << "\n";
  }
  return serving == grpc::health::v1::HealthCheckResponse::SERVING
             ? 0
             : kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "slabctl [--target=HOST:PORT] generate|tokenize|detokenize|info|health "
      "[flags]");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) return UsageError("missing command");
  if (positional.size() > 2) {
    return UsageError(absl::StrCat("unexpected argument '", positional[2],
                                   "' (quote multi-word values)"));
  }
  const std::string command = positional[1];
  if (absl::GetFlag(FLAGS_target).empty())
    return UsageError("--target is empty");
  slabserve::ConnectOptions connect;
  if (std::string error; !slabserve::ApplySecurityFlags(&connect, &error)) {
    return UsageError(error);
  }
  std::unique_ptr<Client> client =
      Client::Connect(absl::GetFlag(FLAGS_target), connect);
  if (command == "generate") return RunGenerate(*client);
  if (command == "tokenize") return RunTokenize(*client);
  if (command == "detokenize") return RunDetokenize(*client);
  if (command == "info") return RunInfo(*client);
  if (command == "health") return RunHealth(*client);
  return UsageError("unknown command '" + command + "'");
}

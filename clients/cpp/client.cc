#include "clients/cpp/client.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"

namespace slabserve {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

void ApplyOptions(const CallOptions& options, const std::string& api_key,
                  grpc::ClientContext* context) {
  if (options.deadline) context->set_deadline(*options.deadline);
  if (!api_key.empty())
    context->AddMetadata("authorization", "Bearer " + api_key);
}

// A stream that an HTTP/2 proxy (nginx's grpc_pass) cuts because its server
// went away mid-stream can only be reset, with INTERNAL_ERROR, which gRPC
// reports as INTERNAL; had the client been connected directly, the broken
// connection would read UNAVAILABLE. It is reported as UNAVAILABLE here too:
// the same server vanished, and another replica may serve a retry.
grpc::Status MapProxyReset(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::INTERNAL &&
      absl::StartsWith(status.error_message(),
                       "Received RST_STREAM with error code 2")) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "stream reset by a proxy (HTTP/2 INTERNAL_ERROR): "
                        "the server behind it went away");
  }
  return status;
}

// One asynchronous Generate stream. Owns its context, request and read
// buffer; holds a reference to itself until gRPC reports the end (OnDone),
// so it outlives the call even when the caller drops the handle. The client's
// tracker counts it until OnDone has run.
class AsyncGenerate final : public GenerateStream,
                            public grpc::ClientReadReactor<v1::GenerateChunk> {
 public:
  AsyncGenerate(const v1::GenerateRequest& request, StreamCallbacks callbacks,
                std::shared_ptr<Client::StreamTracker> tracker)
      : request_(request),
        callbacks_(std::move(callbacks)),
        tracker_(std::move(tracker)) {
    tracker_->Add();
  }

  void Start(v1::Slabserve::Stub* stub, const CallOptions& options,
             const std::string& api_key, std::shared_ptr<AsyncGenerate> self) {
    self_ = std::move(self);
    ApplyOptions(options, api_key, &context_);
    stub->async()->Generate(&context_, &request_, this);
    StartRead(&chunk_);
    StartCall();
  }

  void Cancel() override { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // The stream ended; OnDone follows with the status.
    if (callbacks_.on_chunk) callbacks_.on_chunk(chunk_);
    StartRead(&chunk_);
  }

  void OnDone(const grpc::Status& status) override {
    if (callbacks_.on_done) callbacks_.on_done(MapProxyReset(status));
    std::shared_ptr<Client::StreamTracker> tracker = tracker_;
    self_.reset();  // May destroy this object: touch no member after it.
    tracker->Done();
  }

 private:
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateChunk chunk_;
  StreamCallbacks callbacks_;
  std::shared_ptr<Client::StreamTracker> tracker_;
  std::shared_ptr<AsyncGenerate> self_;
};

// The whole file, or false when it cannot be read.
bool ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  std::stringstream text;
  text << file.rdbuf();
  *out = text.str();
  return !file.bad();
}

// Leading and trailing whitespace (a trailing newline in a key file) off.
std::string Trimmed(const std::string& text) {
  const char* space = " \t\r\n";
  const size_t begin = text.find_first_not_of(space);
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(space) - begin + 1);
}

}  // namespace

bool LoadConnectSecurity(const SecurityFiles& files, ConnectOptions* options,
                         std::string* error) {
  options->tls = files.tls || !files.ca_file.empty() ||
                 !files.cert_file.empty() || !files.key_file.empty();
  if (files.cert_file.empty() != files.key_file.empty()) {
    *error = "a client certificate needs its key, and a key its certificate";
    return false;
  }
  for (const auto& [path, out] :
       {std::pair{&files.ca_file, &options->tls_root_certs},
        std::pair{&files.cert_file, &options->tls_cert_chain},
        std::pair{&files.key_file, &options->tls_private_key}}) {
    if (!path->empty() && !ReadWholeFile(*path, out)) {
      *error = "cannot read " + *path;
      return false;
    }
  }
  std::string key;
  if (!files.api_key_file.empty()) {
    if (!ReadWholeFile(files.api_key_file, &key)) {
      *error = "cannot read API key file " + files.api_key_file;
      return false;
    }
  } else if (const char* env = std::getenv("SLABSERVE_API_KEY")) {
    key = env;
  }
  options->api_key = Trimmed(key);
  if (!files.api_key_file.empty() && options->api_key.empty()) {
    *error = "API key file " + files.api_key_file + " is empty";
    return false;
  }
  return true;
}

CallOptions CallOptions::WithTimeout(double seconds) {
  CallOptions options;
  if (seconds > 0) {
    options.deadline =
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::duration<double>(seconds));
  }
  return options;
}

std::unique_ptr<Client> Client::Connect(const std::string& target,
                                        const ConnectOptions& options) {
  std::vector<Channel> channels;
  const int count = options.channels < 1 ? 1 : options.channels;
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_root_certs;
    ssl.pem_cert_chain = options.tls_cert_chain;
    ssl.pem_private_key = options.tls_private_key;
    credentials = grpc::SslCredentials(ssl);
  }
  for (int i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    // A local subchannel pool plus a distinct argument gives every channel
    // its own TCP connection instead of sharing one.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("slabserve.channel_index", i);
    Channel channel;
    channel.channel = grpc::CreateCustomChannel(target, credentials, args);
    channel.stub = v1::Slabserve::NewStub(channel.channel);
    channels.push_back(std::move(channel));
  }
  return std::unique_ptr<Client>(
      new Client(target, std::move(channels), options.api_key));
}

Client::Client(std::string target, std::vector<Channel> channels,
               std::string api_key)
    : target_(std::move(target)),
      channels_(std::move(channels)),
      api_key_(std::move(api_key)) {
  health_stub_ = grpc::health::v1::Health::NewStub(channels_[0].channel);
}

Client::~Client() { streams_->WaitForNone(); }

void Client::StreamTracker::Add() {
  std::lock_guard<std::mutex> lock(mu_);
  ++running_;
}

void Client::StreamTracker::Done() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--running_ == 0) none_.notify_all();
}

void Client::StreamTracker::WaitForNone() {
  std::unique_lock<std::mutex> lock(mu_);
  none_.wait(lock, [this] { return running_ == 0; });
}

v1::Slabserve::Stub* Client::NextStub() {
  const size_t i = next_channel_.fetch_add(1, std::memory_order_relaxed);
  return channels_[i % channels_.size()].stub.get();
}

bool Client::WaitForReady(std::chrono::system_clock::time_point deadline) {
  return channels_[0].channel->WaitForConnected(deadline);
}

grpc::Status Client::Generate(const v1::GenerateRequest& request,
                              const ChunkCallback& on_chunk,
                              const CallOptions& options) {
  grpc::ClientContext context;
  ApplyOptions(options, api_key_, &context);
  std::unique_ptr<grpc::ClientReader<v1::GenerateChunk>> reader =
      channels_[0].stub->Generate(&context, request);
  v1::GenerateChunk chunk;
  while (reader->Read(&chunk)) {
    if (!on_chunk(chunk)) {
      context.TryCancel();
      // Drain what is already buffered so Finish can complete.
      while (reader->Read(&chunk)) {
      }
      break;
    }
  }
  return MapProxyReset(reader->Finish());
}

std::shared_ptr<GenerateStream> Client::GenerateAsync(
    const v1::GenerateRequest& request, StreamCallbacks callbacks,
    const CallOptions& options) {
  auto stream =
      std::make_shared<AsyncGenerate>(request, std::move(callbacks), streams_);
  stream->Start(NextStub(), options, api_key_, stream);
  return stream;
}

grpc::Status Client::Tokenize(const v1::TokenizeRequest& request,
                              v1::TokenizeResponse* response,
                              const CallOptions& options) {
  grpc::ClientContext context;
  ApplyOptions(options, api_key_, &context);
  return channels_[0].stub->Tokenize(&context, request, response);
}

grpc::Status Client::Detokenize(const v1::DetokenizeRequest& request,
                                v1::DetokenizeResponse* response,
                                const CallOptions& options) {
  grpc::ClientContext context;
  ApplyOptions(options, api_key_, &context);
  return channels_[0].stub->Detokenize(&context, request, response);
}

grpc::Status Client::Info(v1::ModelInfo* info, const CallOptions& options) {
  grpc::ClientContext context;
  ApplyOptions(options, api_key_, &context);
  return channels_[0].stub->GetModelInfo(&context, v1::ModelInfoRequest(),
                                         info);
}

grpc::Status Client::Health(HealthCheckResponse::ServingStatus* status,
                            const std::string& service,
                            const CallOptions& options) {
  grpc::ClientContext context;
  ApplyOptions(options, api_key_, &context);
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status result = health_stub_->Check(&context, request, &response);
  if (result.ok()) *status = response.status();
  return result;
}

std::string ServingStatusName(HealthCheckResponse::ServingStatus status) {
  return HealthCheckResponse::ServingStatus_Name(status);
}

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "CODE_" + std::to_string(static_cast<int>(code));
  }
}

}  // namespace slabserve

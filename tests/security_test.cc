// End-to-end: TLS, mutual TLS and API keys on the gRPC port, with
// certificates made by openssl at test time, through the C++ client and
// slabctl.
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "clients/cpp/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server_process.h"

namespace slabserve::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kKey[] = "test-key-0123456789abcdef";

std::string Dir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

std::string ReadText(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// A CA, a server certificate for 127.0.0.1 and a client certificate.
void MakeCertificates(const std::string& dir) {
  const std::string script = absl::StrCat(
      "set -e; cd ", dir, "; o=/usr/bin/openssl; ",
      "k='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'; ",
      "$o req -x509 $k -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca; ",
      "$o req $k -keyout server.key -out server.csr -subj /CN=127.0.0.1; ",
      "echo subjectAltName=IP:127.0.0.1,DNS:localhost > san.ext; ",
      "$o x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial ",
      "-out server.pem -days 2 -extfile san.ext; ",
      "$o req $k -keyout client.key -out client.csr -subj /CN=client; ",
      "$o x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial ",
      "-out client.pem -days 2; ",
      "$o req -x509 $k -keyout other.key -out other.pem -days 2 ",
      "-subj /CN=other-ca 2>/dev/null", " >openssl.log 2>&1");
  ASSERT_EQ(std::system(script.c_str()), 0) << ReadText(dir + "/openssl.log");
}

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(Dir() + "/security");
    ASSERT_EQ(std::system(("mkdir -p " + *dir_).c_str()), 0);
    MakeCertificates(*dir_);
    std::ofstream(*dir_ + "/keys") << "# test keys\n" << kKey << "\n";
    std::ofstream(*dir_ + "/client_key") << kKey << "\n";
    std::ofstream(*dir_ + "/short_keys") << kKey << "\nshort\n";
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string File(const std::string& name) {
    return *dir_ + "/" + name;
  }

  static std::unique_ptr<ServerProcess> Start(std::vector<std::string> extra) {
    std::vector<std::string> flags = {"--model=tests/golden/griffin_tiny",
                                      "--tls_cert_file=" + File("server.pem"),
                                      "--tls_key_file=" + File("server.key")};
    flags.insert(flags.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start(flags);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  // Info over TLS trusting `ca` (empty: the system's CAs), with `key`.
  static grpc::Status Info(const ServerProcess& server, const std::string& ca,
                           const std::string& key, bool client_cert = false) {
    ConnectOptions options;
    options.tls = true;
    if (!ca.empty()) options.tls_root_certs = ReadText(File(ca));
    if (client_cert) {
      options.tls_cert_chain = ReadText(File("client.pem"));
      options.tls_private_key = ReadText(File("client.key"));
    }
    options.api_key = key;
    std::unique_ptr<Client> client =
        Client::Connect(absl::StrCat("127.0.0.1:", server.port()), options);
    v1::ModelInfo info;
    return client->Info(&info, CallOptions::WithTimeout(10));
  }

  static std::string* dir_;
};

std::string* SecurityTest::dir_ = nullptr;

TEST_F(SecurityTest, TlsWithApiKeys) {
  std::unique_ptr<ServerProcess> server =
      Start({"--api_keys_file=" + File("keys")});
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Info(*server, "ca.pem", kKey).ok());

  grpc::Status no_key = Info(*server, "ca.pem", "");
  EXPECT_EQ(no_key.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(no_key.error_message(), HasSubstr("requires an API key"));
  grpc::Status wrong_key =
      Info(*server, "ca.pem", "wrong-key-0123456789abcdef");
  EXPECT_EQ(wrong_key.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong_key.error_message(), HasSubstr("API key is not valid"));
  // An untrusted server certificate, and plaintext, do not connect at all.
  EXPECT_EQ(Info(*server, "other.pem", kKey).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  {
    std::unique_ptr<Client> plain = Client::Connect(server->address());
    v1::ModelInfo info;
    EXPECT_EQ(plain->Info(&info, CallOptions::WithTimeout(10)).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }

  // Streams too, and health checks need no key.
  ConnectOptions options;
  options.tls = true;
  options.tls_root_certs = ReadText(File("ca.pem"));
  options.api_key = kKey;
  std::unique_ptr<Client> client =
      Client::Connect(absl::StrCat("127.0.0.1:", server->port()), options);
  v1::GenerateRequest request;
  for (int id : {2, 3, 4}) request.mutable_token_ids()->add_ids(id);
  request.set_max_tokens(4);
  int tokens = 0;
  EXPECT_TRUE(client
                  ->Generate(request,
                             [&](const v1::GenerateChunk& chunk) {
                               tokens += chunk.token_ids_size();
                               return true;
                             })
                  .ok());
  EXPECT_EQ(tokens, 4);
  options.api_key.clear();
  std::unique_ptr<Client> keyless =
      Client::Connect(absl::StrCat("127.0.0.1:", server->port()), options);
  grpc::health::v1::HealthCheckResponse::ServingStatus serving;
  EXPECT_TRUE(keyless->Health(&serving).ok());
  EXPECT_EQ(serving, grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(
      keyless->Generate(request, [](const auto&) { return true; }).error_code(),
      grpc::StatusCode::UNAUTHENTICATED);

  // slabctl reads the key and the CA from files.
  const std::string slabctl = absl::StrCat(
      "clients/slabctl/slabctl --target=127.0.0.1:", server->port(),
      " --tls_ca_file=", File("ca.pem"), " info >", File("slabctl.out"),
      " 2>&1");
  EXPECT_NE(std::system(slabctl.c_str()), 0);
  EXPECT_THAT(ReadText(File("slabctl.out")), HasSubstr("UNAUTHENTICATED"));
  const std::string with_key = absl::StrCat(
      "clients/slabctl/slabctl --target=127.0.0.1:", server->port(),
      " --tls_ca_file=", File("ca.pem"), " --api_key_file=", File("client_key"),
      " info >", File("slabctl.out"), " 2>&1");
  EXPECT_EQ(std::system(with_key.c_str()), 0) << ReadText(File("slabctl.out"));
  EXPECT_THAT(ReadText(File("slabctl.out")), HasSubstr("griffin"));
}

TEST_F(SecurityTest, MutualTlsRequiresAClientCertificate) {
  std::unique_ptr<ServerProcess> server =
      Start({"--tls_client_ca_file=" + File("ca.pem")});
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Info(*server, "ca.pem", "", /*client_cert=*/true).ok());
  EXPECT_EQ(Info(*server, "ca.pem", "", /*client_cert=*/false).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, BadSecuritySettingsStopTheServerWithAReason) {
  const std::string model = "--model=tests/golden/griffin_tiny";
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const Case cases[] = {
      {{model, "--tls_cert_file=" + File("server.pem")},
       "tls_cert_file and tls_key_file go together"},
      {{model, "--tls_client_ca_file=" + File("ca.pem")},
       "tls_client_ca_file needs TLS"},
      {{model, "--api_keys_file=" + File("no_such_file")}, "cannot be opened"},
      {{model, "--api_keys_file=" + File("short_keys"), "--listen=127.0.0.1:0",
        "--metrics_listen=none"},
       "line 2: a key must be 16 to 4096 characters"},
  };
  for (const Case& c : cases) {
    ProcessResult result = RunServerToExit(c.flags, absl::Seconds(30));
    EXPECT_NE(result.exit_code, 0) << result.output;
    EXPECT_THAT(result.output, HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace slabserve::testing

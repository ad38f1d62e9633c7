#include "clients/cpp/security_flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(bool, tls, false,
          "Connect with TLS (implied by any --tls_*_file); the server is "
          "checked against the system's CAs unless --tls_ca_file is given.");
ABSL_FLAG(std::string, tls_ca_file, "",
          "PEM file of the CA certificates to check the server against.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM client certificate, for servers that require one (mTLS).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, api_key_file, "",
          "File holding the API key to send (default: the SLABSERVE_API_KEY "
          "environment variable, if set).");

namespace slabserve {

bool ApplySecurityFlags(ConnectOptions* options, std::string* error) {
  SecurityFiles files;
  files.tls = absl::GetFlag(FLAGS_tls);
  files.ca_file = absl::GetFlag(FLAGS_tls_ca_file);
  files.cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  files.key_file = absl::GetFlag(FLAGS_tls_key_file);
  files.api_key_file = absl::GetFlag(FLAGS_api_key_file);
  return LoadConnectSecurity(files, options, error);
}

}  // namespace slabserve

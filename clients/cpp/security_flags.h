// The security flags shared by slabctl and slabload: --tls, --tls_ca_file,
// --tls_cert_file, --tls_key_file and --api_key_file.
#ifndef SLABSERVE_CLIENTS_CPP_SECURITY_FLAGS_H_
#define SLABSERVE_CLIENTS_CPP_SECURITY_FLAGS_H_

#include <string>

#include "clients/cpp/client.h"

namespace slabserve {

// Applies the flags to `options`; false with `error` naming what is wrong.
bool ApplySecurityFlags(ConnectOptions* options, std::string* error);

}  // namespace slabserve

#endif  // SLABSERVE_CLIENTS_CPP_SECURITY_FLAGS_H_

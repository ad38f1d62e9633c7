// A Generate request as the server receives it: protobuf bytes, then every
// check that turns it into a scheduler request (prompt ids, limits,
// sampling, stop strings, request id).
#include <cstddef>
#include <cstdint>

#include "google/protobuf/stubs/logging.h"
#include "server/request_conversion.h"
#include "slabserve/v1/slabserve.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 is expected
    return true;
  }();
  (void)quiet;
  slabserve::v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  slabserve::server::ValidateRequestId(request.request_id()).IgnoreError();
  slabserve::ModelInfo info;  // shaped like the tiny Griffin test model
  info.architecture = "griffin";
  info.vocab_size = 512;
  info.bos_id = 2;
  info.eos_id = 1;
  info.add_bos = true;
  static const slabserve::server::RequestConverter converter(
      info, /*tokenizer=*/nullptr, slabserve::server::RequestLimits{});
  converter.Convert(request).IgnoreError();
  return 0;
}

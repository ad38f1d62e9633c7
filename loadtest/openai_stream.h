// slabload's OpenAI-protocol streams: POST /v1/completions with
// "stream": true on a plain HTTP/1.0 socket (one thread per stream, so the
// body arrives unchunked until the server closes), parsing the server-sent
// events into the GenerateChunks the runner records. Token counts come from
// "logprobs": 0 (one entry per token), the prompt length from the usage
// chunk, so both protocols are measured on the same figures.
#ifndef SLABSERVE_LOADTEST_OPENAI_STREAM_H_
#define SLABSERVE_LOADTEST_OPENAI_STREAM_H_

#include <memory>
#include <string>

#include "clients/cpp/client.h"
#include "slabserve/v1/slabserve.pb.h"

namespace slabload {

// The JSON body for `request` (its prompt, lengths and sampling).
std::string OpenAiCompletionBody(const slabserve::v1::GenerateRequest& request,
                                 const std::string& model);

// Starts one stream to host:port (IPv4 loopback or address) and returns at
// once; the callbacks run on the stream's own thread, on_done last.
std::shared_ptr<slabserve::GenerateStream> StartOpenAiStream(
    const std::string& host, int port, const std::string& model,
    const slabserve::v1::GenerateRequest& request,
    slabserve::StreamCallbacks callbacks, double timeout_s);

}  // namespace slabload

#endif  // SLABSERVE_LOADTEST_OPENAI_STREAM_H_

// Drives one load point against a server with the asynchronous client:
// closed loop (a fixed number of streams in flight) or open loop (Poisson
// or burst arrivals), bounded by a request count and/or a duration.
#ifndef SLABSERVE_LOADTEST_RUNNER_H_
#define SLABSERVE_LOADTEST_RUNNER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "clients/cpp/client.h"
#include "loadtest/stats.h"
#include "loadtest/workload.h"

namespace slabload {

struct RunConfig {
  // Closed loop: streams kept in flight. Ignored in open loop.
  int concurrency = 1;
  // Open loop: Poisson arrivals at this many requests per second (0 = closed
  // loop). With burst, all requests are sent at once.
  double rate = 0;
  bool burst = false;
  uint64_t arrival_seed = 1;
  // Measured requests (0 = no count bound) and measured seconds (0 = no
  // time bound); at least one must be set. Past the duration no new request
  // starts and the ones in flight finish.
  int64_t requests = 0;
  double duration_s = 0;
  // Requests sent before measuring starts, by count or by time.
  int64_t warmup_requests = 0;
  double warmup_s = 0;
  double request_timeout_s = 300;
  // Stop sending once this many requests failed, none succeeded and the
  // failures are at least half of those sent.
  int64_t fail_fast_after = 20;
  bool progress = false;  // redraw a progress line on stderr
};

struct RunResult {
  std::vector<RequestRecord> records;
  // Set when sending stopped early: interrupted, or every request failing.
  std::string stopped_early;
};

// Starts one stream of either protocol (gRPC or OpenAI HTTP) and returns
// at once.
using StreamStarter = std::function<std::shared_ptr<slabserve::GenerateStream>(
    const slabserve::v1::GenerateRequest& request,
    slabserve::StreamCallbacks callbacks, double timeout_s)>;

// Runs one load point. Returns when every started request has finished.
// SIGINT stops sending and cancels what is in flight.
RunResult RunLoad(const StreamStarter& start, Workload& workload,
                  const RunConfig& config);

// Installs the SIGINT handler RunLoad honours; Interrupted() tells whether
// it fired (a sweep then stops too).
void InstallInterruptHandler();
bool Interrupted();

}  // namespace slabload

#endif  // SLABSERVE_LOADTEST_RUNNER_H_

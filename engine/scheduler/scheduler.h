// Continuous batching: every step packs each running sequence's next token
// into one batched forward pass and mixes in prefill chunks of waiting
// prompts under a per-step token budget. The scheduler plans each step and
// commits what the backend sampled; the backend (engine/backend) owns the
// state slabs, the logits and the sampling. Knows slots and state sizes,
// never layer math.
#ifndef SLABSERVE_ENGINE_SCHEDULER_SCHEDULER_H_
#define SLABSERVE_ENGINE_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/backend/backend.h"
#include "engine/models/model.h"
#include "engine/sampling/sampler.h"

namespace slabserve {

struct GenerationRequest {
  std::string id;               // for logs
  std::vector<int32_t> prompt;  // token ids, BOS already added if wanted
  // With a bounded model, prompt + max_new_tokens must not exceed
  // max_positions + 1 (the last token is sampled, never fed); longer
  // requests are rejected, so a server that wants to cap must do it first.
  int max_new_tokens = 16;
  SamplingParams sampling;
  // In addition to EOS. The stop or EOS token is the completion's last
  // token (the server decides whether to show its text).
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  // Completions: prefill once, fork the state n ways; completion i samples
  // with seed sampling.seed + i. All n slots are reserved at admission.
  int n = 1;
  int top_logprobs = -1;  // -1: none; 0: chosen token only; k: plus top k
  int priority = 0;       // higher first
  absl::Time deadline = absl::InfiniteFuture();
};

enum class FinishReason { kNone, kLength, kStop, kEos, kCancelled, kDeadline };

const char* FinishReasonName(FinishReason reason);

struct RequestUsage {
  int prompt_tokens = 0;
  int completion_tokens = 0;     // summed over the n completions
  int cached_prompt_tokens = 0;  // restored from the prefix cache
  absl::Duration queue_time;     // arrival to first prefill step
  absl::Duration time_to_first_token;
  absl::Duration total_time;
};

// What the step loop sends back, per completion index.
struct StreamEvent {
  int index = 0;                              // which of the n completions
  std::vector<SampledToken> tokens;           // new tokens, in order
  FinishReason finish = FinishReason::kNone;  // set on the last event
  // A failed step ends the completion with an error (finish stays kNone).
  absl::Status error;
  RequestUsage usage;  // filled on the last event of the request
};

// The consumer's end of one request: a bounded buffer that the step loop
// fills and the server drains. A full buffer pauses only this request.
class RequestStream {
 public:
  virtual ~RequestStream() = default;
  // Waits up to `timeout` for events; appends all that are ready to `out`.
  // Returns false once the request has finished and everything was read
  // (a call that appends events returns true, so the final events are never
  // delivered together with false).
  virtual bool Read(std::vector<StreamEvent>* out, absl::Duration timeout) = 0;
  // Ends every completion with kCancelled; the slots free within one step.
  virtual void Cancel() = 0;
  // Sets, at most once, a callback run whenever events arrive or the request
  // finishes (at once if some are already waiting), so a reader can Read
  // with a zero timeout instead of waiting. It runs on the step loop's thread
  // without the stream's lock and must be quick and never block.
  virtual void SetOnEvents(std::function<void()> on_events) = 0;
};

// What one step did, for metrics.
struct StepMetrics {
  int batch_size = 0;  // sequences in the forward pass
  int prefill_tokens = 0;
  int decode_tokens = 0;
  int running = 0;  // requests holding slots
  int waiting = 0;  // requests queued
  int slots_in_use = 0;
  absl::Duration step_time;  // the backend's step: forward pass and sampling
};

struct SchedulerOptions {
  // Bound of the waiting queue, in the bytes its requests hold (prompt and
  // stop ids, request id, per-request bookkeeping; WaitingBytes()). A count
  // would turn away bursts of small requests while thousands of slots are
  // free; memory is what a queue costs.
  size_t max_waiting_bytes = size_t{64} << 20;
  // Prompt + decode tokens per step. Every decoding sequence feeds its token
  // (up to max_batch); prompt chunks fill what is left, but get at least a
  // quarter of the budget so prompts advance under heavy decode load.
  int step_token_budget = 512;
  // Sequences per step; beyond it, decodes take turns round robin.
  int max_batch = 4096;
  // 0: no prefix cache. Otherwise an LRU of backend snapshots after whole
  // prompts (with their last logits) and after prefill chunks ending on a
  // multiple of 64 tokens; chunks that stop inside a prompt stop on such a
  // multiple.
  size_t prefix_cache_bytes = 0;
  int stream_buffer_tokens = 256;  // per request, before it is paused
  // Steps whose tokens a stream gathers before its reader is told (the first
  // token and the end go at once): 1 delivers every step; more means fewer,
  // larger messages downstream, at less CPU per token but burstier arrival.
  int stream_interval = 1;
  // Host memory for the state of requests preempted when per-token state
  // blocks run out (engine/scheduler/preemption.h has the policy). A victim
  // whose copy would pass it ends with RESOURCE_EXHAUSTED instead; 0: no
  // swapping, every victim ends.
  size_t max_swap_bytes = size_t{1} << 30;
  // Called on the step loop thread after every backend step; must be quick
  // and must not call back into the scheduler.
  std::function<void(const StepMetrics&)> on_step;
};

struct SchedulerStats {
  int slot_capacity = 0;
  int slots_in_use = 0;
  int running = 0;           // requests holding slots
  int waiting = 0;           // requests queued
  size_t waiting_bytes = 0;  // what they hold, as WaitingBytes() counts
  size_t state_bytes_per_sequence = 0;
  // Per-token state blocks (all zero for a model without per-token state).
  int block_tokens = 0;  // tokens per block
  int block_capacity = 0;
  int blocks_in_use = 0;  // by slots and by cached prefixes
  size_t state_bytes_per_block = 0;
  // Slots and blocks in use, and all of them.
  size_t state_bytes_in_use = 0;
  size_t state_bytes_capacity = 0;
  // Requests preempted to host memory for lack of blocks, and the bytes
  // their copies hold; preemptions counts every one since start.
  int swapped = 0;
  size_t swap_bytes = 0;
  int64_t preemptions = 0;
  int64_t steps = 0;
  int last_batch_size = 0;
  absl::Duration last_step_time;
};

// The bytes a queued request holds, as counted against max_waiting_bytes.
size_t WaitingBytes(const GenerationRequest& request);

class Scheduler {
 public:
  // Takes the backend (its slot capacity is the scheduler's) and starts the
  // step loop thread.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(
      std::unique_ptr<Backend> backend, const SchedulerOptions& options);
  virtual ~Scheduler() = default;

  // INVALID_ARGUMENT for a bad request (empty prompt, unknown token id,
  // bad sampling values, too long for the model, a prompt needing more
  // per-token state blocks than the pool holds), RESOURCE_EXHAUSTED when
  // queuing it would pass max_waiting_bytes, UNAVAILABLE after Drain().
  virtual absl::StatusOr<std::shared_ptr<RequestStream>> Submit(
      GenerationRequest request) = 0;

  // Refuses new requests; returns when every admitted one has finished or
  // `grace` has passed (the rest are cancelled).
  virtual void Drain(absl::Duration grace) = 0;

  virtual SchedulerStats stats() const = 0;
  virtual const ModelInfo& model_info() const = 0;
};

}  // namespace slabserve

#endif  // SLABSERVE_ENGINE_SCHEDULER_SCHEDULER_H_

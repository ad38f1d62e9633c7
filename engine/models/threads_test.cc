// A long sequence is spread over the worker threads (Griffin: conv, gates
// and attention by token, the scan by channel block; B'MOJO: projections and
// attention by token and head, the scan by head); its logits must not
// depend on the thread count. The pool's size is fixed per process, so each
// count runs in a child process forked before this one starts any thread.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/models/registry.h"
#include "engine/state/state_pool.h"
#include "gtest/gtest.h"
#include "kernels/cpu/parallel.h"

namespace slabserve {
namespace {

constexpr int kVocab = 512;  // every model below

// Logits of a 300-token prefill (alone, then beside another sequence) and of
// three decode steps; empty on failure.
std::vector<float> RunModel(const std::string& dir,
                            const LoadOptions& options) {
  absl::StatusOr<std::unique_ptr<Model>> model = LoadModel(dir, options);
  if (!model.ok() || (*model)->info().vocab_size != kVocab) return {};
  auto pool = StatePool::CreateWithCapacity((*model)->StateLayout(), 3,
                                            (*model)->TokenLayout(), 64);
  if (!pool.ok()) return {};
  std::vector<int32_t> prompt(300);
  for (int i = 0; i < 300; ++i) prompt[i] = (i * 131 + 7) % kVocab;
  std::vector<float> out, logits(2 * kVocab);
  const int alone = (*pool)->Allocate();
  if (!(*model)->Prefill(alone, prompt, **pool, logits.data()).ok()) return {};
  out.insert(out.end(), logits.begin(), logits.begin() + kVocab);
  const int crowded = (*pool)->Allocate(), other = (*pool)->Allocate();
  const std::vector<SequenceChunk> batch = {{other, {prompt.data(), 17}, true},
                                            {crowded, prompt, true}};
  if (!(*model)->Forward(batch, **pool, logits.data()).ok()) return {};
  out.insert(out.end(), logits.begin(), logits.end());
  for (int32_t token : {5, 77, 300}) {
    const int32_t one[] = {token};
    if (!(*model)->Prefill(alone, one, **pool, logits.data()).ok()) return {};
    out.insert(out.end(), logits.begin(), logits.begin() + kVocab);
  }
  return out;
}

// RunModel in a child process with `threads` worker threads.
std::vector<float> InChild(int threads, const std::string& dir,
                           const LoadOptions& options) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    cpu::SetNumThreads(threads);
    const std::vector<float> result = RunModel(dir, options);
    const size_t bytes = result.size() * sizeof(float);
    const bool ok =
        write(fds[1], &bytes, sizeof(bytes)) == sizeof(bytes) &&
        write(fds[1], result.data(), bytes) == static_cast<ssize_t>(bytes);
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  size_t bytes = 0;
  std::vector<float> result;
  if (read(fds[0], &bytes, sizeof(bytes)) == sizeof(bytes)) {
    result.resize(bytes / sizeof(float));
    char* at = reinterpret_cast<char*>(result.data());
    for (size_t done = 0; done < bytes;) {
      const ssize_t got = read(fds[0], at + done, bytes - done);
      if (got <= 0) break;
      done += got;
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return result;
}

void ExpectSameAtEveryThreadCount(const std::string& dir,
                                  const LoadOptions& options) {
  const std::vector<float> one = InChild(1, dir, options);
  ASSERT_EQ(one.size(), 6u * kVocab);
  // The 300-token prompt alone and beside another sequence.
  EXPECT_TRUE(
      std::equal(one.begin(), one.begin() + kVocab, one.begin() + 2 * kVocab));
  for (int threads : {2, 3}) {
    EXPECT_EQ(InChild(threads, dir, options), one) << threads << " threads";
  }
}

TEST(ThreadsTest, GriffinLogitsDoNotDependOnTheThreadCount) {
  ExpectSameAtEveryThreadCount("tests/golden/griffin_tiny", {});
}

TEST(ThreadsTest, BmojoLogitsDoNotDependOnTheThreadCount) {
  ExpectSameAtEveryThreadCount("tests/golden/bmojo_tiny", {});
}

TEST(ThreadsTest, BmojoEideticLogitsDoNotDependOnTheThreadCount) {
  LoadOptions options;
  options.eidetic = {32, 0.5, 2};
  ExpectSameAtEveryThreadCount("tests/golden/bmojo_tiny", options);
}

}  // namespace
}  // namespace slabserve

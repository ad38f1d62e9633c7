// A long B'MOJO-F hybrid sequence is spread over the worker threads (conv,
// projections and attention by token and head, the scan by head); its
// logits must not depend on the thread count. The pool's size is fixed per
// process, so each count runs in a child process forked before this one starts
// any thread.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/models/registry.h"
#include "engine/state/state_pool.h"
#include "gtest/gtest.h"
#include "kernels/cpu/parallel.h"

namespace slabserve {
namespace {

// Logits of a 300-token prefill (alone, then beside another sequence) and of
// three decode steps; empty on failure.
std::vector<float> RunModel(const EideticConfig& eidetic) {
  LoadOptions options;
  options.eidetic = eidetic;
  absl::StatusOr<std::unique_ptr<Model>> model =
      LoadModel("tests/golden/bmojo_tiny", options);
  if (!model.ok()) return {};
  const int V = (*model)->info().vocab_size;
  auto pool = StatePool::CreateWithCapacity((*model)->StateLayout(), 3,
                                            (*model)->TokenLayout(), 64);
  if (!pool.ok()) return {};
  std::vector<int32_t> prompt(300);
  for (int i = 0; i < 300; ++i) prompt[i] = (i * 131 + 7) % V;
  std::vector<float> out, logits(2 * V);
  const int alone = (*pool)->Allocate();
  if (!(*model)->Prefill(alone, prompt, **pool, logits.data()).ok()) return {};
  out.insert(out.end(), logits.begin(), logits.begin() + V);
  const int crowded = (*pool)->Allocate(), other = (*pool)->Allocate();
  const std::vector<SequenceChunk> batch = {{other, {prompt.data(), 17}, true},
                                            {crowded, prompt, true}};
  if (!(*model)->Forward(batch, **pool, logits.data()).ok()) return {};
  out.insert(out.end(), logits.begin(), logits.end());
  for (int32_t token : {5, 77, 300}) {
    const int32_t one[] = {token};
    if (!(*model)->Prefill(alone, one, **pool, logits.data()).ok()) return {};
    out.insert(out.end(), logits.begin(), logits.begin() + V);
  }
  return out;
}

// RunModel with `threads` worker threads, B'MOJO-F then with the eidetic
// memory on.
std::vector<float> RunWithThreads(int threads) {
  cpu::SetNumThreads(threads);
  std::vector<float> out = RunModel({});
  const std::vector<float> eidetic = RunModel({32, 0.5, 2});
  if (out.empty() || eidetic.empty()) return {};
  out.insert(out.end(), eidetic.begin(), eidetic.end());
  return out;
}

std::vector<float> InChild(int threads) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const std::vector<float> result = RunWithThreads(threads);
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

TEST(BmojoThreadsTest, LogitsDoNotDependOnTheThreadCount) {
  const std::vector<float> one = InChild(1);
  ASSERT_EQ(one.size(), 12u * 512);
  // The 300-token prompt alone and beside another sequence.
  for (size_t run : {0u, 6u * 512}) {
    EXPECT_TRUE(std::equal(one.begin() + run, one.begin() + run + 512,
                           one.begin() + run + 1024));
  }
  for (int threads : {2, 3}) {
    EXPECT_EQ(InChild(threads), one) << threads << " threads";
  }
}

}  // namespace
}  // namespace slabserve

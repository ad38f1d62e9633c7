#include "kernels/cpu/parallel.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace slabserve::cpu {
namespace {

#if defined(__x86_64__) && defined(__GNUC__) && \
    (defined(__AVX2__) || defined(__FMA__))
// A build for AVX2 and FMA (--config=opt) would die of an illegal
// instruction on a CPU without them; say so instead, before any other
// initializer of the program runs. Compiled for the baseline instruction set
// so that it runs there.
__attribute__((constructor(101), target("no-avx2,no-fma,no-avx"))) void
RequireBuildInstructionSets() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return;
  static const char kMessage[] =
      "this program was built for CPUs with AVX2 and FMA (bazel "
      "--config=opt) and this CPU lacks them; build it without "
      "--config=opt for any x86-64 CPU\n";
  [[maybe_unused]] ssize_t written =
      write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  _exit(1);
}
#endif

std::atomic<int> requested_threads{0};
// Set while this thread runs a pool task: a loop started inside one runs on
// the spot (the pool runs one loop at a time; waiting for it would deadlock).
thread_local bool running_pool_task = false;

class ThreadPool {
 public:
  explicit ThreadPool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs task(i) for i in [0, tasks); the caller takes part.
  void Run(int tasks, const std::function<void(int)>& task) {
    std::unique_lock<std::mutex> run_lock(run_mu_);  // one loop at a time
    const uint64_t generation = generation_.load(std::memory_order_relaxed) + 1;
    task_.store(&task, std::memory_order_relaxed);
    pending_.store(tasks, std::memory_order_relaxed);
    // Opens the loop: a claim of this generation sees the stores above.
    claim_.store(Claim(generation, tasks, 0), std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation_.store(generation, std::memory_order_release);
    }
    wake_.notify_all();
    Drain(generation);
    // A step runs dozens of loops back to back: waiting briefly for the
    // last worker is cheaper than sleeping and being woken.
    SpinWhile([this] { return pending_.load(std::memory_order_acquire) != 0; });
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  // The whole state of a loop's claims in one word, so that one
  // compare-and-swap claims a task: the generation's low 32 bits (a thread
  // would have to sleep through 2^32 loops to mistake one for another), the
  // task count and the next unclaimed index, 16 bits each.
  static uint64_t Claim(uint64_t generation, int tasks, int next) {
    return generation << 32 | static_cast<uint64_t>(tasks) << 16 |
           static_cast<uint64_t>(next);
  }

  // Claims and runs tasks of loop `generation` until none is left. A thread
  // still draining an earlier loop never takes a task of a later one (the
  // generation differs), and a loop's task stays valid while one of its
  // tasks is claimed and not done (Run returns only when none is pending).
  void Drain(uint64_t generation) {
    uint64_t claim = claim_.load(std::memory_order_acquire);
    while (true) {
      if (claim >> 32 != (generation & 0xFFFFFFFFu)) return;
      const int tasks = static_cast<int>(claim >> 16 & 0xFFFFu);
      const int index = static_cast<int>(claim & 0xFFFFu);
      if (index >= tasks) return;
      if (!claim_.compare_exchange_weak(claim, claim + 1,
                                        std::memory_order_acquire)) {
        continue;  // claim now holds the current value
      }
      running_pool_task = true;
      (*task_.load(std::memory_order_relaxed))(index);
      running_pool_task = false;
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // Under the lock, so Run cannot miss it between its check and wait.
        std::lock_guard<std::mutex> lock(mu_);
        done_.notify_all();
      }
      claim = claim_.load(std::memory_order_acquire);
    }
  }
  // Spins while `busy()` holds, for at most about a hundred microseconds.
  template <typename Busy>
  static void SpinWhile(Busy busy) {
    for (int i = 0; i < kSpins && busy(); ++i) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
  }

  void Work() {
    uint64_t seen = 0;
    while (true) {
      // The next loop usually follows within microseconds (see Run).
      SpinWhile([&] {
        return generation_.load(std::memory_order_acquire) == seen &&
               !stop_.load(std::memory_order_relaxed);
      });
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      Drain(seen);
    }
  }

  std::mutex run_mu_;
  std::mutex mu_;  // for the condition variables' waits
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  static constexpr int kSpins = 1000;
  // The current loop's task, written by Run before it opens claim_.
  std::atomic<const std::function<void(int)>*> task_{nullptr};
  std::atomic<uint64_t> claim_{0};  // see Claim()
  std::atomic<int> pending_{0};     // tasks of the current loop not yet done
  std::atomic<uint64_t> generation_{0};  // written under mu_ (for wake_)
  std::atomic<bool> stop_{false};
};

ThreadPool& Pool() {
  static ThreadPool* pool = [] {
    int threads = requested_threads.load();
    if (threads <= 0) {
      threads = std::max(1u, std::thread::hardware_concurrency());
    }
    return new ThreadPool(threads);
  }();
  return *pool;
}

}  // namespace

void SetNumThreads(int threads) { requested_threads = threads; }

int NumThreads() { return Pool().size(); }

namespace {

// ParallelFor in at most `max_tasks` tasks.
void ParallelForTasks(int64_t n, int64_t min_grain, int64_t max_tasks,
                      const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  ThreadPool& pool = Pool();
  int64_t grain = std::max<int64_t>(1, min_grain);
  // At most 65535 tasks: a loop's claims count them in 16 bits.
  int64_t tasks =
      std::min<int64_t>({(n + grain - 1) / grain, max_tasks, 0xFFFF});
  if (tasks <= 1 || pool.size() == 1 || running_pool_task) {
    fn(0, n);
    return;
  }
  int64_t per_task = (n + tasks - 1) / tasks;
  auto task = [&](int i) {
    int64_t begin = i * per_task;
    int64_t end = std::min(n, begin + per_task);
    if (begin < end) fn(begin, end);
  };
  // A std::function holds a reference wrapper in place: no heap allocation
  // per call, as steady-state steps must not allocate.
  pool.Run(static_cast<int>(tasks), std::ref(task));
}

}  // namespace

void ParallelFor(int64_t n, int64_t min_grain,
                 const std::function<void(int64_t, int64_t)>& fn) {
  // A few tasks per thread: enough to even out, few claims.
  ParallelForTasks(n, min_grain, NumThreads() * int64_t{4}, fn);
}

void ParallelForProductBlocks(
    int rows, int panels, int k, const ProductBlocks& shape,
    const std::function<void(int, int, int, int)>& block) {
  const int block_rows = shape.block_rows, group = shape.panel_group;
  const int row_blocks = (rows + block_rows - 1) / block_rows;
  // Many blocks, each its own task: blocks come in uneven sizes (edge rows
  // and panels), which coarser tasks would leave to one thread to finish.
  // A claim costs one compare-and-swap; a block, ~10^5 cycles or more.
  const int64_t want_items = 16 * NumThreads();
  int block_panels = static_cast<int>(std::clamp<int64_t>(
      (int64_t{panels} * row_blocks + want_items - 1) / want_items, 1,
      shape.max_block_panels));
  block_panels = (block_panels + group - 1) / group * group;
  const int panel_blocks = (panels + block_panels - 1) / block_panels;
  constexpr int64_t kPanelWidth = 16;
  const int64_t flops_per_item = 2 * int64_t{std::max(k, 1)} *
                                 std::min(block_rows, rows) *
                                 std::min(block_panels, panels) * kPanelWidth;
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{1} << 19) / flops_per_item);
  auto blocks = [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int r0 = static_cast<int>(b % row_blocks) * block_rows;
      const int p0 = static_cast<int>(b / row_blocks) * block_panels;
      block(r0, std::min(rows, r0 + block_rows), p0,
            std::min(panels, p0 + block_panels));
    }
  };
  // By reference: the std::function stays in its small buffer, so a product
  // allocates nothing.
  const int64_t items = int64_t{row_blocks} * panel_blocks;
  ParallelForTasks(items, grain, items, std::ref(blocks));
}

}  // namespace slabserve::cpu

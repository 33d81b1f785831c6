// Runs tasks 0..tasks-1 on torch's intra-op threads, each thread taking the
// next task from a shared counter. A static split (at::parallel_for over the
// tasks) makes the call as slow as its slowest thread: on a shared machine
// with one core busy, that thread gets half a core and the other finishes
// first and waits. Here the thread on the free core takes more of the work.
// Below `serial_work` units of work the calling thread does everything: a
// parallel region would cost more than the work.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace lamfast {

// make_worker() is called once per thread and returns a callable taking a
// task index, so each thread owns its scratch buffers.
template <typename MakeWorker>
void run_tasks(int64_t tasks, int64_t work, int64_t serial_work, const MakeWorker& make_worker) {
  if (tasks <= 0) return;
  const int64_t workers = work <= serial_work ? 1 : std::min<int64_t>(at::get_num_threads(), tasks);
  if (workers <= 1) {
    auto worker = make_worker();
    for (int64_t t = 0; t < tasks; ++t) worker(t);
    return;
  }
  std::atomic<int64_t> next{0};
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    auto worker = make_worker();
    for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) worker(t);
  });
}

}  // namespace lamfast

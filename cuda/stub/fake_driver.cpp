// A fake CUDA driver, libcuda.so.1 for tests on machines without a GPU: the
// driver API calls the plugin makes (cust's and its own), over host memory,
// running the kernels of ../kernels/rehash.cu (compiled here for the host)
// thread by thread, over the grid each launch asks for. With it, the plugin
// built with CUDA runs its whole device path here: context, module, staging,
// copies, every launch with its arguments as marshalled, the scan's levels,
// the streams and events of the chunked copy-out, and the copy-out itself,
// which the emulated plugin (kernels/host.cpp) does not cover.
//
// Streams are real queues, run late and in a random order: an async call
// only enqueues (a launch copies its arguments' values, as the driver does);
// the work runs when the host synchronises, the streams interleaved at random
// (FAKE_CUDA_SEED), a wait on an event holding its stream until that event's
// record has run. So a copy that is not ordered
// after the kernel that writes its source (same stream, or an event between
// streams) copies the 0xA5 of unwritten device memory, and a host that reads
// a result before synchronising the stream that wrote it reads what was there
// before: each ends in an image that differs from the reference.
// Between two of the plugin's calls nothing may be queued (the plugin ABI:
// the core frees or reuses the arrays a queued copy writes): every call of the
// plugin begins by making its context current, and there the fake aborts if
// work is still queued, naming it. A host range is unregistered only with no
// queued copy into it (the fake aborts otherwise). FAKE_CUDA_FAIL=ENTRY:N makes
// every Nth call of ENTRY (cuMemcpyDtoHAsync_v2, cuLaunchKernel, cuEventRecord,
// ...) fail with CUDA_ERROR_FAKE_INJECTED before it queues anything, so that
// the plugin's error paths, in the middle of a queue, run too.
// Every other entry point of the stub's list returns CUDA_ERROR_STUB_LIBRARY.
// `make cuda` builds it and runs gpu-equivalence and gpu-faults against it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

struct mc_dim3 {
  unsigned x, y, z;
};
static mc_dim3 blockIdx, blockDim, threadIdx;
#define __global__
#define __host__
#define __device__
#include "../kernels/rehash.cu"

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
enum {
  OK = 0,
  INVALID_VALUE = 1,
  OUT_OF_MEMORY = 2,
  NOT_FOUND = 500,
  ALREADY_REGISTERED = 712,
  INJECTED = 999
};

// FAKE_CUDA_FAIL=ENTRY:N: whether this call of `entry` is one made to fail.
static bool injected(const char *entry) {
  static std::string name;
  static uint64_t every = 0, calls = 0;
  static bool parsed = false;
  if (!parsed) {
    parsed = true;
    const char *spec = getenv("FAKE_CUDA_FAIL");
    const char *colon = spec ? strrchr(spec, ':') : nullptr;
    if (colon) {
      name.assign(spec, colon - spec);
      every = strtoull(colon + 1, nullptr, 10);
    }
  }
  return every && name == entry && ++calls % every == 0;
}

typedef void (*Thread)(void **params);

static void count_thread(void **p) {
  mc_count(*(const uint64_t **)p[0], *(const uint32_t **)p[1], *(uint32_t *)p[2],
           *(uint32_t *)p[3], *(uint32_t **)p[4]);
}
static void sums_thread(void **p) {
  mc_scan_sums(*(const uint32_t **)p[0], *(uint64_t *)p[1], *(uint64_t *)p[2],
               *(uint32_t **)p[3], *(uint64_t *)p[4]);
}
static void apply_thread(void **p) {
  mc_scan_apply(*(uint32_t **)p[0], *(uint64_t *)p[1], *(uint64_t *)p[2],
                *(const uint32_t **)p[3], *(uint64_t *)p[4], *(unsigned long long **)p[5]);
}
static void fill_thread(void **p) {
  mc_fill(*(const uint64_t **)p[0], *(const uint32_t **)p[1], *(uint32_t *)p[2],
          *(uint32_t *)p[3], *(const uint32_t **)p[4], *(uint64_t **)p[5], *(uint64_t **)p[6],
          *(uint64_t *)p[7], *(unsigned long long **)p[8], *(uint64_t *)p[9],
          *(uint64_t *)p[10]);
}

static void count_in_place_thread(void **p) {
  mc_count_in_place(*(const uint64_t **)p[0], *(uint32_t *)p[1], *(uint64_t *)p[2],
                    *(uint64_t *)p[3], *(unsigned int **)p[4], *(uint32_t *)p[5],
                    *(uint32_t **)p[6]);
}
static void source_sum_thread(void **p) {
  mc_source_sum(*(const uint64_t **)p[0], *(uint64_t *)p[1], *(unsigned long long **)p[2]);
}
static void fill_in_place_thread(void **p) {
  mc_fill_in_place(*(const uint64_t **)p[0], *(uint32_t *)p[1], *(uint64_t *)p[2],
                   *(uint64_t *)p[3], *(unsigned int **)p[4], *(uint32_t *)p[5],
                   *(const uint32_t **)p[6], *(uint64_t **)p[7], *(uint64_t **)p[8],
                   *(uint64_t *)p[9], *(unsigned long long **)p[10], *(uint64_t *)p[11],
                   *(uint64_t *)p[12]);
}

// Each kernel's parameter sizes, in order (rehash.cu's signatures): what a
// launch copies out of the host's argument pointers.
struct Kernel {
  const char *name;
  Thread thread;
  std::vector<size_t> params;
};
static Kernel kernels[] = {
    {"mc_count", count_thread, {8, 8, 4, 4, 8}},
    {"mc_scan_sums", sums_thread, {8, 8, 8, 8, 8}},
    {"mc_scan_apply", apply_thread, {8, 8, 8, 8, 8, 8}},
    {"mc_fill", fill_thread, {8, 8, 4, 4, 8, 8, 8, 8, 8, 8, 8}},
    {"mc_count_in_place", count_in_place_thread, {8, 4, 8, 8, 8, 4, 8}},
    {"mc_source_sum", source_sum_thread, {8, 8, 8}},
    {"mc_fill_in_place", fill_in_place_thread, {8, 4, 8, 8, 8, 4, 8, 8, 8, 8, 8, 8, 8}}};
static int module_token;
static int context_token;

struct Event {
  uint64_t recorded = 0;  // records enqueued
  uint64_t reached = 0;   // records run
};
struct Op {
  std::function<void()> work;  // empty for a wait
  Event *wait_for = nullptr;
  uint64_t until = 0;  // the wait ends once wait_for->reached >= until
  const char *what = "";
  // The host memory a copy writes or reads, for the checks above.
  const char *host = nullptr;
  size_t host_bytes = 0;
};
struct Stream {
  std::deque<Op> ops;
};
static std::vector<Stream *> streams;

// The scheduler's choices: a xorshift seeded by FAKE_CUDA_SEED (default 1),
// so that a run is reproducible and several seeds try several orders.
static uint64_t rng_state;
static uint64_t next_random() {
  if (!rng_state) {
    const char *seed = getenv("FAKE_CUDA_SEED");
    rng_state = (seed ? strtoull(seed, nullptr, 10) : 1) * 0x9E3779B97F4A7C15ull | 1;
  }
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

// Runs queued work until `target`'s queue is empty (every queue's, for
// NULL): each step runs the first operation of a stream picked at random among
// those that can make progress, so that other streams' work may run before
// work queued earlier on this one (unless a wait orders it) and may still be
// queued when this returns, as on a device. A wait on a record that never runs
// is a hang on a real device: reported as an error.
static bool idle(const Stream *target) {
  for (Stream *s : streams)
    if ((!target || s == target) && !s->ops.empty()) return false;
  return true;
}
static CUresult drain(const Stream *target = nullptr) {
  while (!idle(target)) {
    std::vector<Stream *> ready;
    for (Stream *s : streams) {
      if (s->ops.empty()) continue;
      const Op &op = s->ops.front();
      if (!op.wait_for || op.wait_for->reached >= op.until) ready.push_back(s);
    }
    if (ready.empty()) {
      // A hang on a device. Nothing queued runs any more (nor later, on
      // memory freed meanwhile).
      for (Stream *q : streams) q->ops.clear();
      return INVALID_VALUE;
    }
    Stream *s = ready[next_random() % ready.size()];
    std::function<void()> work = std::move(s->ops.front().work);
    s->ops.pop_front();
    if (work) work();
  }
  return OK;
}

static CUresult enqueue(void *stream, const char *what, std::function<void()> work,
                        const void *host = nullptr, size_t host_bytes = 0) {
  if (!stream) return INVALID_VALUE;  // the plugin uses its own streams only
  if (injected(what)) return INJECTED;
  static_cast<Stream *>(stream)->ops.push_back(
      Op{std::move(work), nullptr, 0, what, static_cast<const char *>(host), host_bytes});
  return OK;
}

// The queued work, named, for an abort's message; false if there is none.
static bool report_queued(const char *why) {
  size_t n = 0;
  for (Stream *s : streams) n += s->ops.size();
  if (!n) return false;
  fprintf(stderr, "fake CUDA driver: %s: %zu operation(s) still queued:", why, n);
  for (Stream *s : streams)
    for (const Op &op : s->ops) fprintf(stderr, " %s", op.wait_for ? "cuStreamWaitEvent" : op.what);
  fprintf(stderr, "\n");
  return true;
}

// What the plugin did with the driver, printed at exit with FAKE_CUDA_STATS=1
// (read once, at load): how a check sees which transfer a rebuild took. A
// registration is counted when it is unregistered, by what was copied through
// it: the source of a host-to-device copy (an in-place source registered for
// the copy-in), the destination of a device-to-host one (the new arrays
// registered for the copy-out), or neither.
static unsigned long stat_registered_in, stat_registered_out, stat_registered_unused, stat_waits;
static bool stats_wanted = getenv("FAKE_CUDA_STATS") != nullptr;
__attribute__((destructor)) static void print_stats() {
  if (stats_wanted)
    fprintf(stderr,
            "fake CUDA driver: registered for copy-in %lu for copy-out %lu unused %lu; "
            "cuStreamWaitEvent %lu\n",
            stat_registered_in, stat_registered_out, stat_registered_unused, stat_waits);
}
extern "C" {
CUresult cuInit(unsigned) { return OK; }
CUresult cuDeviceGet(int *device, int ordinal) {
  if (ordinal != 0) return INVALID_VALUE;
  *device = 0;
  return OK;
}
CUresult cuDeviceGetAttribute(int *value, int attribute, int) {
  // 75, 76: compute capability major, minor (9.0: the cubin path).
  *value = attribute == 75 ? 9 : 0;
  return OK;
}
CUresult cuDevicePrimaryCtxRetain(void **ctx, int) {
  *ctx = &context_token;
  return OK;
}
CUresult cuDevicePrimaryCtxRelease_v2(int) { return OK; }
// Where each of the plugin's calls begins (see the top).
CUresult cuCtxSetCurrent(void *) {
  if (report_queued("a plugin call began (cuCtxSetCurrent) with the last one's work")) abort();
  return OK;
}
CUresult cuCtxGetCurrent(void **ctx) {
  *ctx = &context_token;
  return OK;
}
CUresult cuModuleLoadDataEx(void **module, const void *, unsigned, void *, void *) {
  *module = &module_token;
  return OK;
}
CUresult cuModuleLoadData(void **module, const void *) {
  *module = &module_token;
  return OK;
}
CUresult cuModuleUnload(void *) { return OK; }
CUresult cuModuleGetFunction(void **function, void *, const char *name) {
  for (auto &k : kernels) {
    if (strcmp(k.name, name) == 0) {
      *function = &k;
      return OK;
    }
  }
  return NOT_FOUND;
}
CUresult cuStreamCreateWithPriority(void **stream, unsigned, int) {
  Stream *s = new Stream;
  streams.push_back(s);
  *stream = s;
  return OK;
}
CUresult cuStreamDestroy_v2(void *stream) {
  CUresult r = drain();
  for (auto it = streams.begin(); it != streams.end(); ++it) {
    if (*it == stream) {
      streams.erase(it);
      delete static_cast<Stream *>(stream);
      return r;
    }
  }
  return INVALID_VALUE;
}
// Runs the stream's work, and other streams' as the scheduler picks it (see
// drain): what the host may read after it is what this stream wrote.
CUresult cuStreamSynchronize(void *stream) {
  if (!stream) return INVALID_VALUE;
  // Injected: an asynchronous error reported by this sync, the work still
  // queued (a later sync runs it).
  if (injected("cuStreamSynchronize")) return INJECTED;
  return drain(static_cast<Stream *>(stream));
}
CUresult cuEventCreate(void **event, unsigned) {
  *event = new Event;
  return OK;
}
// After the queued work, whose records and waits use the event (the driver
// keeps an event a queued operation uses until it has run).
CUresult cuEventDestroy_v2(void *event) {
  drain();
  delete static_cast<Event *>(event);
  return OK;
}
CUresult cuEventRecord(void *event, void *stream) {
  Event *e = static_cast<Event *>(event);
  CUresult r = enqueue(stream, "cuEventRecord", [e] { e->reached++; });
  if (r == OK) e->recorded++;
  return r;
}
CUresult cuStreamWaitEvent(void *stream, void *event, unsigned) {
  if (!stream) return INVALID_VALUE;
  if (injected("cuStreamWaitEvent")) return INJECTED;
  Event *e = static_cast<Event *>(event);
  stat_waits++;
  // Waits for the event's latest record at the time of the call, as CUDA does.
  static_cast<Stream *>(stream)->ops.push_back(Op{nullptr, e, e->recorded, "cuStreamWaitEvent"});
  return OK;
}
CUresult cuMemAlloc_v2(CUdeviceptr *ptr, size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) return OUT_OF_MEMORY;
  // Device memory is not zeroed: make any read of an unwritten word visible.
  memset(p, 0xA5, bytes);
  *ptr = (CUdeviceptr)p;
  return OK;
}
// Frees after the queued work, which may still use the memory (the driver's
// cuMemFree synchronises too).
CUresult cuMemFree_v2(CUdeviceptr ptr) {
  CUresult r = drain();
  free((void *)ptr);
  return r;
}
CUresult cuMemAllocHost_v2(void **ptr, size_t bytes) {
  *ptr = malloc(bytes ? bytes : 1);
  return *ptr ? OK : OUT_OF_MEMORY;
}
CUresult cuMemFreeHost(void *ptr) {
  free(ptr);
  return OK;
}
// Registrations, checked: a range that overlaps a registered one is
// refused as by the driver, unregistering what is not registered is an error,
// and unregistering a range a queued copy still uses aborts (on a device the
// DMA would go to memory no longer pinned for it).
struct Registered {
  const char *ptr;
  size_t bytes;
  bool copied_in, copied_out;  // a copy went through it (FAKE_CUDA_STATS)
};
static Registered registered[16];
static bool overlap(const char *a, size_t a_bytes, const char *b, size_t b_bytes) {
  return a < b + b_bytes && b < a + a_bytes;
}
CUresult cuMemHostRegister_v2(void *ptr, size_t bytes, unsigned) {
  if (!ptr || !bytes) return INVALID_VALUE;
  const char *p = static_cast<const char *>(ptr);
  for (auto &r : registered)
    if (r.ptr && overlap(r.ptr, r.bytes, p, bytes)) return ALREADY_REGISTERED;
  for (auto &r : registered) {
    if (!r.ptr) {
      r = {p, bytes, false, false};
      return OK;
    }
  }
  return OUT_OF_MEMORY;
}
CUresult cuMemHostUnregister(void *ptr) {
  for (auto &r : registered) {
    if (r.ptr && r.ptr == ptr) {
      for (Stream *s : streams) {
        for (const Op &op : s->ops) {
          if (op.host && overlap(op.host, op.host_bytes, r.ptr, r.bytes)) {
            fprintf(stderr, "fake CUDA driver: cuMemHostUnregister with a %s into it still queued\n",
                    op.what);
            abort();
          }
        }
      }
      if (r.copied_in) stat_registered_in++;
      if (r.copied_out) stat_registered_out++;
      if (!r.copied_in && !r.copied_out) stat_registered_unused++;
      r = {nullptr, 0, false, false};
      return OK;
    }
  }
  return INVALID_VALUE;
}
// Marks the registrations a host range of a queued copy lies in.
static void copied_through(const void *host, size_t bytes, bool in) {
  for (auto &r : registered)
    if (r.ptr && overlap(r.ptr, r.bytes, static_cast<const char *>(host), bytes))
      (in ? r.copied_in : r.copied_out) = true;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t bytes, void *stream) {
  copied_through(src, bytes, true);
  return enqueue(stream, "cuMemcpyHtoDAsync_v2", [=] { memcpy((void *)dst, src, bytes); }, src,
                 bytes);
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t bytes, void *stream) {
  copied_through(dst, bytes, false);
  return enqueue(stream, "cuMemcpyDtoHAsync_v2", [=] { memcpy(dst, (const void *)src, bytes); },
                 dst, bytes);
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t n, void *stream) {
  return enqueue(stream, "cuMemsetD8Async", [=] { memset((void *)dst, value, n); });
}
CUresult cuLaunchKernel(void *function, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned, void *stream, void **params,
                        void **) {
  if (gy != 1 || gz != 1 || by != 1 || bz != 1 || !params) return INVALID_VALUE;
  const Kernel *kernel = static_cast<Kernel *>(function);
  // The arguments' values now, as the driver takes them: the host's
  // variables may be gone when the kernel runs.
  auto values = std::make_shared<std::vector<uint64_t>>(kernel->params.size(), 0);
  for (size_t i = 0; i < kernel->params.size(); i++)
    memcpy(&(*values)[i], params[i], kernel->params[i]);
  Thread thread = kernel->thread;
  return enqueue(stream, "cuLaunchKernel", [=] {
    std::vector<void *> args(values->size());
    for (size_t i = 0; i < values->size(); i++) args[i] = &(*values)[i];
    blockDim = {bx, 1, 1};
    for (unsigned b = 0; b < gx; b++) {
      blockIdx = {b, 0, 0};
      for (unsigned t = 0; t < bx; t++) {
        threadIdx = {t, 0, 0};
        thread(args.data());
      }
    }
  });
}
CUresult cuGetErrorName(CUresult result, const char **name) {
  *name = result == INJECTED ? "CUDA_ERROR_FAKE_INJECTED" : "CUDA_ERROR_FAKE";
  return OK;
}
}

/// @file tests/emulator/test_fake_nccl.cpp @brief The emulated NCCL (kernels/cuda/emulator/nccl.cpp): collectives against references computed here, with ranks as threads and as processes; validation errors; groups; non-blocking init; duplicate devices; ranks that never join or never arrive; abort; no /dev/shm leftovers.
//
// Tests with several ranks need one emulated device per rank (EMBER_EMU_DEVICES); with fewer they
// report themselves skipped (a WARN) and pass.
#include <catch2/catch.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "tests/emulator/fake_nccl_scenarios.h"

extern char** environ;

using namespace fake_nccl_test;

namespace {

// ---- environment and setup -----------------------------------------------------------------------

/// Sets an environment variable for the lifetime of the object (the previous value is restored).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

/// The tests' emulated-NCCL settings: 256-byte slots (collectives take many steps) and a timeout.
struct NcclEnv {
  explicit NcclEnv(int timeout_ms) : timeout("EMBER_EMU_NCCL_TIMEOUT_MS", std::to_string(timeout_ms)) {}
  ScopedEnv chunk{"EMBER_EMU_NCCL_CHUNK_BYTES", "256"};
  ScopedEnv timeout;
};

/// True when there is one emulated device per rank; otherwise says why the test is skipped.
bool have_devices(int nranks) {
  int n = 0;
  cudaGetDeviceCount(&n);
  if (n >= nranks) return true;
  WARN("skipped: " << nranks << " ranks need " << nranks << " emulated devices (EMBER_EMU_DEVICES), there are " << n);
  return false;
}

ncclUniqueId new_id() {
  ncclUniqueId id{};
  REQUIRE(ncclGetUniqueId(&id) == ncclSuccess);
  return id;
}

/// Whether the shared-memory segment an id names exists in /dev/shm.
bool segment_exists(const ncclUniqueId& id) {
  struct stat st {};
  return stat(("/dev/shm" + std::string(id.internal)).c_str(), &st) == 0;
}

std::string last_error() { return ncclGetLastError(nullptr); }

// ---- ranks as threads and as processes --------------------------------------------------------------

/// Runs scenario(rank) for every rank on its own thread, with device `device(rank)` current.
template <class Scenario, class Device>
std::vector<Results> on_threads(int nranks, Scenario scenario, Device device) {
  std::vector<Results> results(static_cast<std::size_t>(nranks) + 0);
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r)
    threads.emplace_back([&, r] {
      cudaSetDevice(device(r));
      results[std::size_t(r)] = scenario(r);
    });
  for (auto& t : threads) t.join();
  return results;
}
template <class Scenario>
std::vector<Results> on_threads(int nranks, Scenario scenario) {
  return on_threads(nranks, scenario, [](int r) { return r; });
}

/// Parses what fake_nccl_rank.cpp prints (fake_nccl_test::print).
Results parse(std::istream& in) {
  Results r;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string tag, key;
    s >> tag >> key;
    if (tag == "v") {
      std::size_t n = 0;
      s >> n;
      std::vector<double>& v = r.values[key];
      v.resize(n);
      for (double& x : v) s >> x;
    } else if (tag == "n") {
      std::getline(s >> std::ws, r.notes[key]);
    }
  }
  return r;
}

/// One rank process: its pid and the file its stdout goes to.
struct RankProcess {
  pid_t pid = -1;
  std::string out_path;
};

/// Starts ember_fake_nccl_rank with `args` (it inherits the environment).
RankProcess spawn_rank(const std::vector<std::string>& args) {
  RankProcess p;
  char path[] = "/tmp/ember-fake-nccl-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  p.out_path = path;
  std::vector<std::string> argv_s{EMBER_FAKE_NCCL_RANK};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_TRUNC, 0600);
  const int rc = posix_spawn(&p.pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  return p;
}

/// Waits for a rank process (killed after 120 s: a hang is a failure, not a stuck test) and reads its results.
Results wait_rank(const RankProcess& p) {
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (waitpid(p.pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(p.pid, SIGKILL);
      waitpid(p.pid, &status, 0);
      FAIL_CHECK("rank process " << p.pid << " did not finish within 120 s (killed)");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  std::ifstream in(p.out_path);
  Results r = parse(in);
  std::remove(p.out_path.c_str());
  return r;
}

/// Runs one process per rank: argv of rank r is {scenario, nranks, r, device(r), segment, extra(r)}.
template <class Device, class Extra>
std::vector<Results> on_processes(int nranks, const std::string& scenario, const ncclUniqueId& id, Device device,
                                  Extra extra) {
  std::vector<RankProcess> procs;
  for (int r = 0; r < nranks; ++r)
    procs.push_back(spawn_rank({scenario, std::to_string(nranks), std::to_string(r), std::to_string(device(r)),
                                id.internal, std::to_string(extra(r))}));
  std::vector<Results> results;
  for (const auto& p : procs) results.push_back(wait_rank(p));
  return results;
}

// ---- references ----------------------------------------------------------------------------------

/// "" when got == want element for element (within `tol` relative), else the first difference.
std::string difference(const std::vector<double>& got, const std::vector<double>& want, double tol = 0) {
  if (got.size() != want.size()) return "size " + std::to_string(got.size()) + ", want " + std::to_string(want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::abs(got[i] - want[i]) <= tol * std::abs(want[i]))) {
      std::ostringstream s;
      s.precision(17);
      s << "element " << i << ": got " << got[i] << ", want " << want[i];
      return s.str();
    }
  return "";
}

/// Folds every rank's input at each element in the documented way: acc = op(acc, input(r, i)).
template <class T, class Input, class Op>
std::vector<double> fold_ranks(int nranks, std::size_t n, Input input, Op op, std::size_t offset = 0) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    T acc = T(input(0, offset + i));
    for (int r = 1; r < nranks; ++r) acc = op(acc, T(input(r, offset + i)));
    v[i] = double(acc);
  }
  return v;
}

/// Rank `root`'s input (what a broadcast from it delivers).
template <class Input>
std::vector<double> of_rank(int root, std::size_t n, Input input) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = double(input(root, i));
  return v;
}

/// Checks every rank's results of scenario_collectives against references computed here.
void check_collectives(const std::vector<Results>& ranks) {
  const int n = int(ranks.size()), last = n - 1, second = 1 % n;
  const auto sum = [](auto a, auto b) { return a + b; };
  const auto max = [](auto a, auto b) { return std::max(a, b); };
  const auto min = [](auto a, auto b) { return std::min(a, b); };
  const auto prod = [](auto a, auto b) { return a * b; };
  std::vector<double> sum_f32 = fold_ranks<double>(n, kCount, input_f32, sum), avg_f32 = sum_f32;
  for (double& x : avg_f32) x /= n;
  std::vector<double> avg_i32 = fold_ranks<std::int64_t>(n, kCount, input_i32, sum);
  for (double& x : avg_i32) x = double(std::int64_t(x) / n);  // NCCL: integer average truncates
  std::vector<double> sum_u8 = fold_ranks<int>(n, kCount, input_u8, sum);
  for (double& x : sum_u8) x = double(int(x) % 256);  // uint8 sums wrap
  const std::vector<std::pair<std::string, std::vector<double>>> all_reduce{
      {"allreduce_sum_f32", sum_f32},
      {"allreduce_max_f32", fold_ranks<double>(n, kCount, input_f32, max)},
      {"allreduce_sum_f64", fold_ranks<double>(n, kCount, input_f64, sum)},
      {"allreduce_prod_i32", fold_ranks<std::int64_t>(n, kCount, input_i32, prod)},
      {"allreduce_avg_i32", avg_i32},
      {"allreduce_min_i64", fold_ranks<std::int64_t>(n, kCount, input_i64, min)},
      {"allreduce_sum_u8", sum_u8},
      {"broadcast_f32", of_rank(last, kCount, input_f32)},
      {"bcast_i64", of_rank(second, kCount, input_i64)},
      {"group_allreduce_sum_f32", sum_f32},
      {"group_broadcast_f32", of_rank(second, kCount, input_f32)},
      {"group_allreduce_max_f64", fold_ranks<double>(n, kCount, input_f64, max)}};
  std::vector<double> gathered;
  for (int q = 0; q < n; ++q) {
    const std::vector<double> block = of_rank(q, kBlock, input_f32);
    gathered.insert(gathered.end(), block.begin(), block.end());
  }
  for (int r = 0; r < n; ++r) {
    const Results& got = ranks[std::size_t(r)];
    INFO("rank " << r << " of " << n);
    REQUIRE(got.status("init") == ncclSuccess);
    for (const auto& [key, values] : got.values)
      if (key.rfind("status_", 0) == 0 || key == "destroy") {
        INFO(key << ": " << (got.notes.count(key) ? got.notes.at(key) : ""));
        CHECK(std::string(ncclGetErrorString(ncclResult_t(values[0]))) == "no error");
      }
    for (const auto& [key, want] : all_reduce) {
      INFO(key);
      CHECK(difference(got.values.at(key), want) == "");
    }
    CHECK(difference(got.values.at("allreduce_avg_f32"), avg_f32, 1e-6) == "");
    const std::vector<double> reduced = r == last ? sum_f32 : std::vector<double>(kCount, kSentinel);
    CHECK(difference(got.values.at("reduce_sum_f32"), reduced) == "");
    CHECK(difference(got.values.at("allgather_f32"), gathered) == "");
    CHECK(difference(got.values.at("reducescatter_sum_f32"),
                     fold_ranks<double>(n, kBlock, input_f32, sum, std::size_t(r) * kBlock)) == "");
    // Reductions are computed in rank order: bitwise the same on every rank.
    for (const char* key : {"allreduce_sum_f32", "allreduce_avg_f32", "allreduce_sum_f64", "allreduce_max_f32"})
      CHECK(difference(got.values.at(key), ranks[0].values.at(key)) == "");
  }
}

/// Checks results of scenario_arrive on a rank whose collective a peer never joined (or aborted).
void check_failed_collective(const Results& r, const std::string& note) {
  REQUIRE(r.status("init") == ncclSuccess);
  CHECK(r.status("async") == ncclRemoteError);
  CHECK_THAT(r.notes.count("async") ? r.notes.at("async") : "", Catch::Contains(note));
  CHECK(r.get("untouched") == 1.0);
}

}  // namespace

// ---- API basics (one rank) -----------------------------------------------------------------------

TEST_CASE("fake NCCL: version, unique ids and error strings", "[fake][nccl]") {
  int version = 0;
  CHECK(ncclGetVersion(&version) == ncclSuccess);
  CHECK(version == NCCL_VERSION_CODE);
  CHECK(version == NCCL_VERSION(2, 28, 9));
  CHECK(ncclGetVersion(nullptr) == ncclInvalidArgument);
  const ncclUniqueId a = new_id(), b = new_id();
  CHECK(std::string(a.internal) != std::string(b.internal));
  CHECK_THAT(std::string(a.internal), Catch::StartsWith("/ember-nccl-" + std::to_string(getpid()) + "-"));
  CHECK_FALSE(segment_exists(a));  // the id only names the rendezvous
  CHECK(ncclGetUniqueId(nullptr) == ncclInvalidArgument);
  std::vector<std::string> texts;
  for (int r = ncclSuccess; r < ncclNumResults; ++r) texts.push_back(ncclGetErrorString(ncclResult_t(r)));
  std::sort(texts.begin(), texts.end());
  CHECK(std::unique(texts.begin(), texts.end()) == texts.end());
  CHECK(std::string(ncclGetErrorString(ncclNumResults)) == "unknown result code");
}

TEST_CASE("fake NCCL: a world of one: collectives copy, queries answer, the segment is gone after init",
          "[fake][nccl]") {
  NcclEnv env(20000);
  const ncclUniqueId id = new_id();
  ncclComm_t comm = nullptr;
  REQUIRE(ncclCommInitRank(&comm, 1, id, 0) == ncclSuccess);
  REQUIRE(comm != nullptr);
  CHECK_FALSE(segment_exists(id));
  int count = 0, device = -1, rank = -1, current = -1;
  cudaGetDevice(&current);
  CHECK(ncclCommCount(comm, &count) == ncclSuccess);
  CHECK(ncclCommCuDevice(comm, &device) == ncclSuccess);
  CHECK(ncclCommUserRank(comm, &rank) == ncclSuccess);
  CHECK((count == 1 && device == current && rank == 0));

  Results out;
  out.put("init", ncclSuccess);
  collectives(out, comm, 0, 1);
  check_collectives({out});
  CHECK(ncclCommDestroy(comm) == ncclSuccess);
}

TEST_CASE("fake NCCL: collectives inside a group are issued at the outermost ncclGroupEnd", "[fake][nccl]") {
  NcclEnv env(20000);
  ncclComm_t comm = nullptr;
  REQUIRE(ncclCommInitRank(&comm, 1, new_id(), 0) == ncclSuccess);
  cudaStream_t s = nullptr;
  cudaStreamCreate(&s);
  const std::vector<float> before(kCount, 1.0f), after(kCount, 2.0f);
  DeviceBuffer<float> send(kCount), recv(kCount, kSentinel);

  // Outside a group the all-reduce reads `send` before a later overwrite on the same stream.
  send.upload(before);
  REQUIRE(ncclAllReduce(send.get(), recv.get(), kCount, ncclFloat32, ncclSum, comm, s) == ncclSuccess);
  cudaMemcpyAsync(send.get(), after.data(), kCount * sizeof(float), cudaMemcpyHostToDevice, s);
  cudaStreamSynchronize(s);
  CHECK(recv.download() == before);

  // In a (nested) group it is queued at the outermost ncclGroupEnd, after the overwrite.
  send.upload(before);
  REQUIRE(ncclGroupStart() == ncclSuccess);
  REQUIRE(ncclGroupStart() == ncclSuccess);
  REQUIRE(ncclAllReduce(send.get(), recv.get(), kCount, ncclFloat32, ncclSum, comm, s) == ncclSuccess);
  REQUIRE(ncclGroupEnd() == ncclSuccess);
  cudaMemcpyAsync(send.get(), after.data(), kCount * sizeof(float), cudaMemcpyHostToDevice, s);
  REQUIRE(ncclGroupEnd() == ncclSuccess);
  cudaStreamSynchronize(s);
  CHECK(recv.download() == after);

  // An invalid call fails the whole group: ncclGroupEnd returns its error and issues nothing.
  DeviceBuffer<float> untouched(kCount, kSentinel);
  REQUIRE(ncclGroupStart() == ncclSuccess);
  CHECK(ncclAllReduce(send.get(), untouched.get(), kCount, ncclFloat32, ncclSum, comm, s) == ncclSuccess);
  CHECK(ncclAllReduce(send.get(), untouched.get(), kCount, ncclDataType_t(ncclNumTypes), ncclSum, comm, s) ==
        ncclInvalidArgument);
  CHECK(ncclGroupEnd() == ncclInvalidArgument);
  cudaStreamSynchronize(s);
  CHECK(untouched.download() == std::vector<float>(kCount, kSentinel));

  CHECK(ncclGroupEnd() == ncclInvalidUsage);
  CHECK_THAT(last_error(), Catch::Contains("not in a group"));
  cudaStreamDestroy(s);
  CHECK(ncclCommDestroy(comm) == ncclSuccess);
}

TEST_CASE("fake NCCL: init arguments are validated as NCCL documents", "[fake][nccl]") {
  NcclEnv env(20000);
  const ncclUniqueId id = new_id();
  ncclComm_t comm = reinterpret_cast<ncclComm_t>(&comm);  // not null: failures must reset it
  const auto expect = [&](ncclResult_t got, ncclResult_t want, const std::string& message) {
    CHECK(got == want);
    CHECK_THAT(last_error(), Catch::Contains(message));
  };
  expect(ncclCommInitRank(nullptr, 1, id, 0), ncclInvalidArgument, "newcomm argument is NULL");
  expect(ncclCommInitRank(&comm, 0, id, 0), ncclInvalidArgument, "Invalid rank requested : 0/0");
  CHECK(comm == nullptr);
  expect(ncclCommInitRank(&comm, 2, id, -1), ncclInvalidArgument, "Invalid rank requested : -1/2");
  expect(ncclCommInitRank(&comm, 2, id, 2), ncclInvalidArgument, "Invalid rank requested : 2/2");
  expect(ncclCommInitRank(&comm, 1, ncclUniqueId{}, 0), ncclInvalidArgument, "not made by ncclGetUniqueId");
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  expect(ncclCommInitRankConfig(&comm, 1, id, 0, nullptr), ncclInvalidArgument, "config argument is NULL");
  ncclConfig_t uninitialized{};
  expect(ncclCommInitRankConfig(&comm, 1, id, 0, &uninitialized), ncclInvalidArgument, "NCCL_CONFIG_INITIALIZER");
  config.blocking = 2;
  expect(ncclCommInitRankConfig(&comm, 1, id, 0, &config), ncclInvalidArgument, "blocking attribute value 2");
  REQUIRE(ncclGroupStart() == ncclSuccess);
  expect(ncclCommInitRank(&comm, 1, id, 0), ncclInvalidUsage, "inside ncclGroupStart");
  CHECK(ncclGroupEnd() == ncclInvalidUsage);
  CHECK(comm == nullptr);
  CHECK_FALSE(segment_exists(id));
  CHECK(ncclCommDestroy(nullptr) == ncclSuccess);
  CHECK(ncclCommAbort(nullptr) == ncclSuccess);
}

TEST_CASE("fake NCCL: collective arguments are validated as NCCL documents", "[fake][nccl]") {
  NcclEnv env(20000);
  ncclComm_t comm = nullptr;
  REQUIRE(ncclCommInitRank(&comm, 1, new_id(), 0) == ncclSuccess);
  cudaStream_t s = nullptr;
  cudaStreamCreate(&s);
  DeviceBuffer<float> a(16, 3.0f), b(16, kSentinel);
  std::vector<float> host(16, 1.0f);
  const auto expect = [&](ncclResult_t got, ncclResult_t want, const std::string& message) {
    CHECK(got == want);
    CHECK_THAT(last_error(), Catch::Contains(message));
  };
  const ncclDataType_t f32 = ncclFloat32;

  // null communicator
  expect(ncclAllReduce(a.get(), b.get(), 16, f32, ncclSum, nullptr, s), ncclInvalidArgument, "comm argument is NULL");
  expect(ncclBroadcast(a.get(), b.get(), 16, f32, 0, nullptr, s), ncclInvalidArgument, "comm argument is NULL");
  expect(ncclBcast(a.get(), 16, f32, 0, nullptr, s), ncclInvalidArgument, "comm argument is NULL");
  expect(ncclReduce(a.get(), b.get(), 16, f32, ncclSum, 0, nullptr, s), ncclInvalidArgument, "comm argument is NULL");
  expect(ncclAllGather(a.get(), b.get(), 16, f32, nullptr, s), ncclInvalidArgument, "comm argument is NULL");
  expect(ncclReduceScatter(a.get(), b.get(), 16, f32, ncclSum, nullptr, s), ncclInvalidArgument,
         "comm argument is NULL");
  // datatype, op, root out of range (invalid enumerators within each enum's value range: UBSan)
  for (int t : {int(ncclNumTypes), 15})
    expect(ncclAllReduce(a.get(), b.get(), 16, ncclDataType_t(t), ncclSum, comm, s), ncclInvalidArgument,
           "invalid type " + std::to_string(t));
  for (int op : {int(ncclNumOps), 1000})
    expect(ncclAllReduce(a.get(), b.get(), 16, f32, ncclRedOp_t(op), comm, s), ncclInvalidArgument,
           "invalid reduction operation " + std::to_string(op));
  for (int root : {-1, 1}) {
    expect(ncclBroadcast(a.get(), b.get(), 16, f32, root, comm, s), ncclInvalidArgument, "invalid root");
    expect(ncclReduce(a.get(), b.get(), 16, f32, ncclSum, root, comm, s), ncclInvalidArgument, "invalid root");
  }
  // counts and buffers
  expect(ncclAllReduce(a.get(), b.get(), SIZE_MAX / 2, f32, ncclSum, comm, s), ncclInvalidArgument, "too large");
  expect(ncclAllReduce(a.get(), b.get(), 17, f32, ncclSum, comm, s), ncclInvalidArgument,
         "not inside one cudaMalloc allocation");
  expect(ncclAllReduce(host.data(), b.get(), 16, f32, ncclSum, comm, s), ncclInvalidArgument, "sendbuff");
  expect(ncclAllReduce(a.get(), host.data(), 16, f32, ncclSum, comm, s), ncclInvalidArgument, "recvbuff");
  expect(ncclBroadcast(nullptr, b.get(), 16, f32, 0, comm, s), ncclInvalidArgument, "sendbuff");
  DeviceBuffer<float> small(4);
  expect(ncclAllGather(a.get(), small.get(), 8, f32, comm, s), ncclInvalidArgument, "recvbuff");
  CHECK(ncclAllReduce(nullptr, nullptr, 0, f32, ncclSum, comm, s) == ncclSuccess);  // empty: nothing to do
  // types the emulator does not reduce (copies take every type)
  expect(ncclAllReduce(a.get(), b.get(), 32, ncclFloat16, ncclSum, comm, s), ncclInvalidUsage,
         "does not reduce ncclFloat16");
  CHECK(ncclBroadcast(a.get(), b.get(), 32, ncclBfloat16, 0, comm, s) == ncclSuccess);
  cudaStreamSynchronize(s);
  CHECK(b.download() == std::vector<float>(16, 3.0f));
  // queries
  int n = 0;
  expect(ncclCommCount(nullptr, &n), ncclInvalidArgument, "comm argument is NULL");
  expect(ncclCommCount(comm, nullptr), ncclInvalidArgument, "count argument is NULL");
  ncclResult_t async = ncclInternalError;
  expect(ncclCommGetAsyncError(comm, nullptr), ncclInvalidArgument, "asyncError argument is NULL");
  // none of it broke the communicator
  CHECK(ncclCommGetAsyncError(comm, &async) == ncclSuccess);
  CHECK(async == ncclSuccess);
  CHECK(ncclAllReduce(a.get(), b.get(), 16, f32, ncclMax, comm, s) == ncclSuccess);
  // finalize: no more collectives
  CHECK(ncclCommFinalize(comm) == ncclSuccess);
  expect(ncclCommFinalize(comm), ncclInvalidArgument, "already finalized");
  expect(ncclAllReduce(a.get(), b.get(), 16, f32, ncclSum, comm, s), ncclInvalidUsage, "finalized");
  cudaStreamDestroy(s);
  CHECK(ncclCommDestroy(comm) == ncclSuccess);
}

TEST_CASE("fake NCCL: buffers and streams of another device are refused", "[fake][nccl]") {
  if (!have_devices(2)) return;
  NcclEnv env(20000);
  ncclComm_t comm = nullptr;
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  REQUIRE(ncclCommInitRank(&comm, 1, new_id(), 0) == ncclSuccess);
  DeviceBuffer<float> on0(16, 1.0f);
  REQUIRE(cudaSetDevice(1) == cudaSuccess);
  DeviceBuffer<float> on1(16, 1.0f);
  cudaStream_t s1 = nullptr;
  cudaStreamCreate(&s1);
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  CHECK(ncclAllReduce(on1.get(), on0.get(), 16, ncclFloat32, ncclSum, comm, nullptr) == ncclInvalidArgument);
  CHECK_THAT(last_error(), Catch::Contains("sendbuff allocated on device 1 mismatchs with NCCL device 0"));
  CHECK(ncclAllReduce(on0.get(), on0.get(), 16, ncclFloat32, ncclSum, comm, s1) == ncclUnhandledCudaError);
  CHECK_THAT(last_error(), Catch::Contains("stream of device 1"));
  // A collective issued while another device is current runs on the communicator's, which stays current after.
  REQUIRE(cudaSetDevice(1) == cudaSuccess);
  CHECK(ncclAllReduce(on0.get(), on0.get(), 16, ncclFloat32, ncclSum, comm, nullptr) == ncclSuccess);
  int current = -1;
  cudaGetDevice(&current);
  CHECK(current == 1);
  cudaStreamDestroy(s1);
  cudaSetDevice(0);
  CHECK(ncclCommDestroy(comm) == ncclSuccess);
}

TEST_CASE("fake NCCL: a non-blocking communicator answers ncclInProgress until polled", "[fake][nccl]") {
  NcclEnv env(20000);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  REQUIRE(ncclCommInitRankConfig(&comm, 1, new_id(), 0, &config) == ncclInProgress);
  REQUIRE(comm != nullptr);
  ncclResult_t state = ncclInternalError;
  REQUIRE(ncclCommGetAsyncError(comm, &state) == ncclSuccess);
  CHECK(state == ncclSuccess);  // a world of one has joined at once

  cudaStream_t s = nullptr;
  cudaStreamCreate(&s);
  DeviceBuffer<float> a(16, 2.5f);
  CHECK(ncclAllReduce(a.get(), a.get(), 16, ncclFloat32, ncclSum, comm, s) == ncclInProgress);
  CHECK(ncclAllReduce(a.get(), a.get(), 16, ncclFloat32, ncclSum, comm, s) == ncclInvalidArgument);
  CHECK_THAT(last_error(), Catch::Contains("before the previous operation returned ncclSuccess"));
  REQUIRE(ncclCommGetAsyncError(comm, &state) == ncclSuccess);
  CHECK(state == ncclSuccess);
  CHECK(ncclAllReduce(a.get(), a.get(), 16, ncclFloat32, ncclAvg, comm, s) == ncclInProgress);
  REQUIRE(ncclCommGetAsyncError(comm, &state) == ncclSuccess);
  cudaStreamSynchronize(s);
  CHECK(a.download() == std::vector<float>(16, 2.5f));
  // A group of a non-blocking communicator's collectives answers ncclInProgress at its end.
  REQUIRE(ncclGroupStart() == ncclSuccess);
  CHECK(ncclAllReduce(a.get(), a.get(), 16, ncclFloat32, ncclSum, comm, s) == ncclSuccess);
  CHECK(ncclGroupEnd() == ncclInProgress);
  REQUIRE(ncclCommGetAsyncError(comm, &state) == ncclSuccess);
  CHECK(state == ncclSuccess);

  // Finalize, with a collective still queued (nothing waited for it): ncclInProgress until it has run.
  DeviceBuffer<float> out(16, kSentinel);
  CHECK(ncclAllReduce(a.get(), out.get(), 16, ncclFloat32, ncclSum, comm, s) == ncclInProgress);
  REQUIRE(ncclCommGetAsyncError(comm, &state) == ncclSuccess);
  const ncclResult_t finalize = ncclCommFinalize(comm);
  CHECK((finalize == ncclSuccess || finalize == ncclInProgress));
  const auto start = std::chrono::steady_clock::now();
  do REQUIRE(ncclCommGetAsyncError(comm, &state) == ncclSuccess);
  while (state == ncclInProgress && ms_since(start) < 10000);
  CHECK(state == ncclSuccess);
  CHECK(out.download() == std::vector<float>(16, 2.5f));  // it ran: polling drives the queued collectives
  cudaStreamDestroy(s);
  CHECK(ncclCommDestroy(comm) == ncclSuccess);
}

// ---- failures of a rendezvous ------------------------------------------------------------------------

TEST_CASE("fake NCCL: a rank that never joins makes init fail after the timeout", "[fake][nccl]") {
  NcclEnv env(300);
  SECTION("blocking init returns ncclRemoteError naming the missing rank") {
    const ncclUniqueId id = new_id();
    ncclComm_t comm = nullptr;
    const auto start = std::chrono::steady_clock::now();
    CHECK(ncclCommInitRank(&comm, 3, id, 1) == ncclRemoteError);
    const double ms = ms_since(start);
    CHECK((ms >= 300 && ms < 10000));
    CHECK_THAT(last_error(), Catch::Contains("waited 300 ms") && Catch::Contains("ranks 0, 2 to join"));
    CHECK(comm == nullptr);
    CHECK_FALSE(segment_exists(id));
  }
  SECTION("non-blocking init reports ncclInProgress, then ncclRemoteError") {
    const ncclUniqueId id = new_id();
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = nullptr;
    REQUIRE(ncclCommInitRankConfig(&comm, 2, id, 0, &config) == ncclInProgress);
    ncclResult_t state = ncclSuccess;
    REQUIRE(ncclCommGetAsyncError(comm, &state) == ncclSuccess);
    CHECK(state == ncclInProgress);
    int count = 0;
    CHECK(ncclCommCount(comm, &count) == ncclInvalidArgument);  // not usable before init completed
    CHECK(segment_exists(id));  // waiting for rank 1: the rendezvous is open
    const auto start = std::chrono::steady_clock::now();
    while (state == ncclInProgress && ms_since(start) < 10000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      REQUIRE(ncclCommGetAsyncError(comm, &state) == ncclSuccess);
    }
    CHECK(state == ncclRemoteError);
    CHECK_THAT(last_error(), Catch::Contains("rank 1 to join"));
    CHECK_FALSE(segment_exists(id));
    CHECK(ncclCommDestroy(comm) == ncclRemoteError);  // as NCCL: a failed communicator is aborted, not destroyed
    CHECK(ncclCommAbort(comm) == ncclSuccess);
  }
  SECTION("aborting a non-blocking init unlinks the rendezvous") {
    const ncclUniqueId id = new_id();
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = nullptr;
    REQUIRE(ncclCommInitRankConfig(&comm, 2, id, 0, &config) == ncclInProgress);
    CHECK(segment_exists(id));
    CHECK(ncclCommAbort(comm) == ncclSuccess);
    CHECK_FALSE(segment_exists(id));
  }
}

TEST_CASE("fake NCCL: ranks on one device fail init with Duplicate GPU detected", "[fake][nccl]") {
  NcclEnv env(20000);
  for (int nranks : {2, 3}) {
    const ncclUniqueId id = new_id();
    const auto ranks = on_threads(nranks, [&](int r) { return scenario_init(nranks, r, id); }, [](int) { return 0; });
    for (const Results& r : ranks) {
      CHECK(r.status("init") == ncclInvalidUsage);
      CHECK_THAT(r.notes.at("init"), Catch::Contains("Duplicate GPU detected") && Catch::Contains("CUDA device 0"));
    }
    CHECK_FALSE(segment_exists(id));
  }
}

// ---- ranks as threads ------------------------------------------------------------------------------

TEST_CASE("fake NCCL: ranks as threads: every collective on 2 and 3 ranks", "[fake][nccl]") {
  for (int nranks : {2, 3}) {
    if (!have_devices(nranks)) return;
    NcclEnv env(20000);
    const ncclUniqueId id = new_id();
    check_collectives(on_threads(nranks, [&](int r) { return scenario_collectives(nranks, r, id); }));
    CHECK_FALSE(segment_exists(id));
  }
}

TEST_CASE("fake NCCL: ranks as threads: non-blocking init is in progress until every rank joined", "[fake][nccl]") {
  if (!have_devices(2)) return;
  NcclEnv env(20000);
  const ncclUniqueId id = new_id();
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  cudaSetDevice(0);
  ncclComm_t comm = nullptr;
  REQUIRE(ncclCommInitRankConfig(&comm, 2, id, 0, &config) == ncclInProgress);
  ncclResult_t state = ncclSuccess;
  for (int i = 0; i < 20; ++i) {  // 100 ms without rank 1
    REQUIRE(ncclCommGetAsyncError(comm, &state) == ncclSuccess);
    CHECK(state == ncclInProgress);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Results rank1_results;
  std::thread rank1([&] {
    cudaSetDevice(1);
    rank1_results = scenario_init(2, 1, id);
  });
  const auto start = std::chrono::steady_clock::now();
  while (state == ncclInProgress && ms_since(start) < 10000) ncclCommGetAsyncError(comm, &state);
  rank1.join();
  CHECK(rank1_results.status("init") == ncclSuccess);
  CHECK(state == ncclSuccess);
  int count = 0;
  CHECK(ncclCommCount(comm, &count) == ncclSuccess);
  CHECK(count == 2);
  CHECK(ncclCommDestroy(comm) == ncclSuccess);
  CHECK_FALSE(segment_exists(id));
}

TEST_CASE("fake NCCL: ranks as threads: a rank that never arrives fails the others' collective", "[fake][nccl]") {
  for (int nranks : {2, 3}) {
    if (!have_devices(nranks)) return;
    NcclEnv env(300);
    const ncclUniqueId id = new_id();
    const int silent = nranks - 1;
    const auto ranks = on_threads(nranks, [&](int r) {
      return r == silent ? scenario_silent(nranks, r, id, 500) : scenario_arrive(nranks, r, id);
    });
    // The first rank to time out names the missing one; the others may fail through its report first.
    int named = 0;
    for (int r = 0; r < silent; ++r) {
      INFO("rank " << r << " of " << nranks);
      const Results& got = ranks[std::size_t(r)];
      check_failed_collective(got, "");
      const std::string note = got.notes.count("async") ? got.notes.at("async") : "";
      if (note.find("for rank " + std::to_string(silent) + ", which did not arrive") != std::string::npos) {
        ++named;
        CHECK(got.get("wait_ms") >= 300);
      } else {
        CHECK_THAT(note, Catch::Contains("gave up waiting for a peer (timeout)"));
      }
    }
    CHECK(named >= 1);
    CHECK(ranks[std::size_t(silent)].status("destroy") == ncclSuccess);
  }
}

TEST_CASE("fake NCCL: ranks as threads: ncclCommAbort ends pending collectives", "[fake][nccl]") {
  if (!have_devices(2)) return;
  NcclEnv env(20000);  // far longer than the test: only the abort can end the waits
  SECTION("a peer's abort fails the collective at once") {
    const ncclUniqueId id = new_id();
    const auto ranks =
        on_threads(2, [&](int r) { return r == 0 ? scenario_abort(2, 0, id, 200) : scenario_arrive(2, 1, id); });
    check_failed_collective(ranks[1], "rank 0 aborted the communicator");
    CHECK(ranks[1].get("wait_ms") < 10000);
  }
  SECTION("aborting a communicator completes its own pending collective without output") {
    const ncclUniqueId id = new_id();
    std::promise<ncclComm_t> joined;
    std::atomic<double> wait_ms{-1};
    std::atomic<bool> untouched{false};
    std::thread rank0([&] {
      cudaSetDevice(0);
      scenario_silent(2, 0, id, 1500);
    });
    std::thread rank1([&] {
      cudaSetDevice(1);
      ncclComm_t comm = nullptr;
      ncclCommInitRank(&comm, 2, id, 1);
      joined.set_value(comm);
      if (comm == nullptr) return;
      DeviceBuffer<float> send(kCount, 1.0f), recv(kCount, kSentinel);
      cudaStream_t s = nullptr;
      cudaStreamCreate(&s);
      const auto start = std::chrono::steady_clock::now();
      ncclAllReduce(send.get(), recv.get(), kCount, ncclFloat32, ncclSum, comm, s);
      cudaStreamSynchronize(s);
      wait_ms = ms_since(start);
      untouched = recv.download() == std::vector<float>(kCount, kSentinel);
      cudaStreamDestroy(s);
    });
    ncclComm_t comm = joined.get_future().get();
    REQUIRE(comm != nullptr);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // rank 1 is waiting in its all-reduce
    CHECK(ncclCommAbort(comm) == ncclSuccess);
    rank1.join();
    rank0.join();
    CHECK((wait_ms >= 400 && wait_ms < 10000));
    CHECK(untouched);
  }
}

TEST_CASE("fake NCCL: ranks as threads: mismatched collectives are reported, not hung on", "[fake][nccl]") {
  if (!have_devices(2)) return;
  NcclEnv env(20000);
  const ncclUniqueId id = new_id();
  std::vector<ncclResult_t> async(2, ncclSuccess);
  on_threads(2, [&](int r) {
    Results out;
    ncclComm_t comm = join(out, 2, r, id);
    if (comm == nullptr) return out;
    DeviceBuffer<float> buf(64, 1.0f);
    ncclAllReduce(buf.get(), buf.get(), r == 0 ? 64 : 32, ncclFloat32, ncclSum, comm, nullptr);  // counts differ
    cudaStreamSynchronize(nullptr);
    ncclCommGetAsyncError(comm, &async[std::size_t(r)]);
    ncclCommAbort(comm);
    return out;
  });
  CHECK(async[0] == ncclInvalidUsage);
  CHECK(async[1] == ncclInvalidUsage);
}

// ---- ranks as processes ------------------------------------------------------------------------------

TEST_CASE("fake NCCL: ranks as processes", "[fake][nccl]") {
  const auto same = [](int) { return 0; };
  const auto own = [](int r) { return r; };
  const auto none = [](int) { return 0; };
  SECTION("a world of one, and a rank that never joins: init fails after the timeout") {
    NcclEnv env(300);
    const ncclUniqueId alone = new_id();
    CHECK(on_processes(1, "init", alone, same, none)[0].status("init") == ncclSuccess);
    const ncclUniqueId id = new_id();
    const Results lonely = wait_rank(spawn_rank({"init", "2", "0", "0", id.internal}));
    CHECK(lonely.status("init") == ncclRemoteError);
    CHECK_THAT(lonely.notes.at("init"), Catch::Contains("rank 1 to join"));
    CHECK_FALSE(segment_exists(id));
  }
  SECTION("two processes on one device: Duplicate GPU detected") {
    NcclEnv env(20000);
    const ncclUniqueId id = new_id();
    for (const Results& r : on_processes(2, "init", id, same, none)) {
      CHECK(r.status("init") == ncclInvalidUsage);
      CHECK_THAT(r.notes.at("init"), Catch::Contains("Duplicate GPU detected"));
    }
    CHECK_FALSE(segment_exists(id));
  }
  SECTION("every collective on 2 and 3 ranks") {
    for (int nranks : {2, 3}) {
      if (!have_devices(nranks)) return;
      NcclEnv env(20000);
      const ncclUniqueId id = new_id();
      check_collectives(on_processes(nranks, "collectives", id, own, none));
      CHECK_FALSE(segment_exists(id));
    }
  }
  SECTION("a rank that never arrives, and a rank that aborts") {
    if (!have_devices(2)) return;
    {
      NcclEnv env(300);
      const ncclUniqueId id = new_id();
      std::vector<RankProcess> procs{spawn_rank({"arrive", "2", "0", "0", id.internal}),
                                     spawn_rank({"silent", "2", "1", "1", id.internal, "1500"})};
      const Results arrived = wait_rank(procs[0]), silent = wait_rank(procs[1]);
      check_failed_collective(arrived, "rank 1, which did not arrive");
      CHECK(silent.status("destroy") == ncclSuccess);
    }
    {
      NcclEnv env(20000);
      const ncclUniqueId id = new_id();
      std::vector<RankProcess> procs{spawn_rank({"abort", "2", "0", "0", id.internal, "200"}),
                                     spawn_rank({"arrive", "2", "1", "1", id.internal})};
      const Results aborted = wait_rank(procs[0]), arrived = wait_rank(procs[1]);
      CHECK(aborted.status("abort") == ncclSuccess);
      check_failed_collective(arrived, "rank 0 aborted the communicator");
      CHECK(arrived.get("wait_ms") < 10000);
    }
  }
}

// Last in the file: every test above has cleaned up after itself.
TEST_CASE("fake NCCL: no shared-memory segment of this process is left in /dev/shm", "[fake][nccl]") {
  const std::string prefix = "ember-nccl-" + std::to_string(getpid()) + "-";
  std::vector<std::string> left;
  if (DIR* d = opendir("/dev/shm")) {
    while (const dirent* e = readdir(d))
      if (std::string(e->d_name).rfind(prefix, 0) == 0) left.push_back(e->d_name);
    closedir(d);
  }
  CHECK(left == std::vector<std::string>{});
}

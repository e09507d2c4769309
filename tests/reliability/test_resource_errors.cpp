/// @file tests/reliability/test_resource_errors.cpp @brief Out of memory (allocator limits on CPU and CUDA), disk full on checkpoint write (a small tmpfs), unreadable or broken data: each is a clear ember::Error and nothing already saved is lost.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/allocator.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "data/fashion_mnist.h"
#include "data/idx.h"
#include "optim/adamw.h"
#include "optim/grad_accumulator.h"
#include "tests/harness/backends.h"
#include "tests/harness/datasets.h"
#include "tests/optim/fixtures.h"
#include "tests/reliability/process.h"
#include "tests/train/temp_dir.h"

#include "examples/ember_train/checkpoint.h"
#include "examples/ember_train/train.h"

using namespace ember;
using Catch::Matchers::Contains;
using ember::test::optim_fixtures::CoreMLP;

namespace {

/// An allocator limit for one scope (also on failure).
struct LimitGuard {
  Device dev;
  LimitGuard(Device d, int64_t bytes) : dev(d) { allocator_for(dev).set_limit(bytes); }
  ~LimitGuard() { allocator_for(dev).set_limit(0); }
};

/// Model + AdamW + accumulator (windows of 2) on `dev`; window w uses micro-batches 2w, 2w+1 of 64 samples.
struct Job {
  CoreMLP model;
  optim::AdamW opt;
  optim::GradAccumulator acc;
  Device dev;
  explicit Job(Device d) : model(16, 64, 4, 5, d), opt(model.parameters(), {.lr = 0.01}), acc(model, opt, {.accum_steps = 2}), dev(d) {}
  void window(int64_t w) {
    for (int64_t k = 2 * w; k < 2 * w + 2; ++k) {
      const Tensor x = test::random_input({64, 16}, 300 + static_cast<uint64_t>(k)).to(dev);
      const Tensor y = test::random_input({64, 4}, 400 + static_cast<uint64_t>(k)).to(dev);
      const Tensor d = model(x) - y;
      acc.backward(sum(d * d) * (1.0 / 64), 64);
    }
  }
  NamedTensors state() {
    NamedTensors all = model.named_parameters();
    for (auto& [n, t] : opt.state_dict(model.named_parameters())) all.emplace_back("optim." + n, t);
    return all;
  }
  void load(const std::string& path) {
    SafetensorsContent c = load_safetensors(path);
    NamedTensors params, state;
    for (auto& [n, t] : c.tensors) {
      if (n.rfind("optim.", 0) == 0)
        state.emplace_back(n.substr(6), t);
      else
        params.emplace_back(n, t);
    }
    NoGradGuard ng;
    for (auto& [n, p] : model.named_parameters())
      for (auto& [m, t] : params)
        if (m == n) p.copy_(t.to(dev));
    opt.load_state_dict(state, model.named_parameters());
  }
};

std::vector<std::vector<float>> values(const NamedTensors& l) {
  std::vector<std::vector<float>> out;
  for (const auto& [n, t] : l) out.push_back(t.to(Device::cpu()).to(DType::f32).to_vector<float>());
  return out;
}

/// Runs `script` in a private mount namespace (unshare -m) where a tmpfs of `size` is mounted on `mnt`;
/// false when this machine does not allow that (not root, no unshare).
bool tmpfs_available(const test::TempDir& dir) {
  const std::string mnt = dir.file("probe");
  std::filesystem::create_directory(mnt);
  const std::string cmd = "unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs " + mnt + "' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace

TEST_CASE("out of memory during training (allocator limit, CPU and CUDA): a clear error, the saved state intact, "
          "memory back to baseline, and a resumed run as if nothing happened",
          "[reliability][oom][cuda]") {
  for (const Device dev : test::devices()) {
    INFO(dev.str());
    test::TempDir dir;
    const std::string ck = dir.file("ck.safetensors");
    Job ref(dev);  // the uninterrupted run: windows 0, 1, 2
    for (int64_t w = 0; w < 3; ++w) ref.window(w);
    {
      Job job(dev);
      job.window(0);
      save_safetensors(ck, job.state());
      const std::string saved = test::read_bytes(ck);
      allocator_for(dev).empty_cache();  // CUDA: the next window's blocks must come from the device, not the cache
      const int64_t in_use = allocator_stats(dev).current_bytes;
      {
        LimitGuard limit(dev, in_use + 4096);  // the next window's activations do not fit
        try {
          job.window(1);
          FAIL("expected an out-of-memory error");
        } catch (const Error& e) {
          const std::string msg = e.message();
          INFO(msg);
          CHECK_THAT(msg, Contains("out of memory") && Contains("requested ") && Contains(" bytes in use") &&
                              Contains("limit of "));
        }
      }
      CHECK(test::read_bytes(ck) == saved);  // nothing already saved is lost
    }
    // A fresh process state resumed from the checkpoint reaches the uninterrupted run's weights exactly.
    Job resumed(dev);
    resumed.load(ck);
    resumed.window(1);
    resumed.window(2);
    CHECK(values(resumed.state()) == values(ref.state()));
  }
}

TEST_CASE("an error in the middle of training releases every tensor it had allocated", "[reliability][oom][cuda]") {
  for (const Device dev : test::devices()) {
    INFO(dev.str());
    allocator_for(dev).empty_cache();
    const int64_t baseline = allocator_stats(dev).current_bytes;
    {
      Job job(dev);
      job.window(0);
      allocator_for(dev).empty_cache();
      LimitGuard limit(dev, allocator_stats(dev).current_bytes + 4096);
      CHECK_THROWS_AS(job.window(1), Error);
    }
    allocator_for(dev).empty_cache();
    CHECK(allocator_stats(dev).current_bytes == baseline);  // the failed micro-batch leaked nothing
    CHECK(allocator_stats(dev).cached_bytes == 0);
  }
}

namespace {
/// A short CPU run of ember-train's MLP: micro-batch 16, one epoch over `limit_train` samples, no progress bar.
train::TrainOptions small_mlp_run(int64_t limit_train, int64_t limit_test) {
  train::TrainOptions o;
  o.model = train::ModelKind::MLP;
  o.micro_batch = 16;
  o.epochs = 1;
  o.device = train::DeviceChoice::CPU;
  o.limit_train = limit_train;
  o.limit_test = limit_test;
  o.progress = false;
  return o;
}
}  // namespace

TEST_CASE("ember-train out of memory: error names the request, and the checkpoint it had written stays valid",
          "[reliability][oom][train]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  train::TrainOptions o = small_mlp_run(96, 50);
  o.accum = 2;
  std::ostringstream log;
  train::TrainOptions full = o;
  full.save = dir.file("full.safetensors");
  train::run_training(full, log);
  train::TrainOptions part = o;
  part.steps = 1;
  part.save = dir.file("ck.safetensors");
  train::run_training(part, log);
  const std::string saved = test::read_bytes(part.save);
  train::TrainOptions resume = o;
  resume.resume = part.save;
  resume.save = part.save;
  resume.checkpoint_every = 1;
  {
    LimitGuard limit(Device::cpu(), allocator_stats().current_bytes + (1 << 20));  // model + AdamW state: 3 x 2.1 MB
    CHECK_THROWS_WITH(train::run_training(resume, log), Contains("cpu out of memory: requested"));
  }
  CHECK(test::read_bytes(part.save) == saved);
  train::run_training(resume, log);  // then the resume works and ends where the uninterrupted run ended
  const SafetensorsContent a = load_safetensors(full.save), b = load_safetensors(part.save);
  CHECK(a.metadata == b.metadata);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    INFO(a.tensors[i].first);
    CHECK(a.tensors[i].second.to(DType::f64).to_vector<double>() == b.tensors[i].second.to(DType::f64).to_vector<double>());
  }
}

TEST_CASE("ember-train with an unreadable, missing or broken data directory: a clear error, the checkpoint untouched",
          "[reliability][data][train]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  train::TrainOptions o = small_mlp_run(32, 20);
  o.steps = 1;
  o.save = dir.file("ck.safetensors");
  std::ostringstream log;
  train::run_training(o, log);
  const std::string saved = test::read_bytes(o.save);
  const std::string src = data::kDefaultFashionMnistDir;
  auto make_dir = [&](const std::string& name) {
    const std::string d = dir.file(name);
    std::filesystem::create_directory(d);
    for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                          "t10k-labels-idx1-ubyte.gz"})
      std::filesystem::copy_file(src + "/" + f, d + "/" + f);
    return d;
  };
  auto fails_with = [&](const std::string& data_dir, const std::string& what) {
    train::TrainOptions r = o;
    r.data_dir = data_dir;
    r.resume = o.save;
    r.checkpoint_every = 1;
    INFO("--data " << data_dir);
    CHECK_THROWS_WITH(train::run_training(r, log), Contains(what));
    CHECK(test::read_bytes(o.save) == saved);
  };
  fails_with(dir.file("nowhere"), "nowhere");
  test::write_bytes(dir.file("a-file"), "x");
  fails_with(dir.file("a-file"), "is not a directory");
  const std::string missing = make_dir("missing");
  std::filesystem::remove(missing + "/t10k-labels-idx1-ubyte.gz");
  fails_with(missing, "t10k-labels-idx1-ubyte.gz nor t10k-labels-idx1-ubyte found in");
  const std::string truncated = make_dir("truncated");
  const std::string images = test::read_bytes(truncated + "/train-images-idx3-ubyte.gz");
  test::write_bytes(truncated + "/train-images-idx3-ubyte.gz", images.substr(0, images.size() / 2));
  fails_with(truncated, "train-images-idx3-ubyte.gz: truncated or corrupt gzip data");
  const std::string garbage = make_dir("garbage");
  test::write_bytes(garbage + "/train-labels-idx1-ubyte.gz", "this is not an IDX file");
  fails_with(garbage, "bad magic number");
  const std::string a_dir = make_dir("dir-in-place");
  std::filesystem::remove(a_dir + "/t10k-images-idx3-ubyte.gz");
  std::filesystem::create_directory(a_dir + "/t10k-images-idx3-ubyte.gz");
  fails_with(a_dir, "is not a regular file");

  // Permission denied. Root reads everything, so as root the binary runs as user nobody (setpriv).
#ifdef EMBER_TRAIN_BINARY
  const std::string locked = make_dir("locked");
  ::chmod(dir.path().c_str(), 0755);
  ::chmod(locked.c_str(), 0);
  std::string bin = EMBER_TRAIN_BINARY;
  const std::string out = dir.file("locked.log");
  std::vector<std::string> argv;
  if (::geteuid() == 0) {
    argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    // The build may live where nobody cannot go (a root user's 0700 home): run a copy of the binary and
    // of the libraries next to it ($ORIGIN) from the test's 0755 directory.
    const std::filesystem::path build = std::filesystem::path(bin).parent_path();
    for (const auto& e : std::filesystem::directory_iterator(build))
      if (e.path().extension() == ".so" && e.path().filename().string().rfind("libember", 0) == 0)
        std::filesystem::copy_file(e.path(), dir.file(e.path().filename().string()));
    std::filesystem::copy_file(bin, dir.file("ember-train"));
    bin = dir.file("ember-train");
  }
  for (const std::string& a : {bin, std::string("--data"), locked, std::string("--limit-train"), std::string("32"),
                               std::string("--no-progress"), std::string("--device"), std::string("cpu")})
    argv.push_back(a);
  if (!std::filesystem::exists(argv[0])) {
    WARN("setpriv not installed: the permission-denied case is not run");
  } else {
    const test::ExitStatus st = test::run_process(argv, {}, out);
    const std::string text = test::read_bytes(out);
    INFO(text);
    CHECK(st.exited_with(1));
    CHECK_THAT(text, Contains("ember-train: error: Fashion-MNIST: cannot read the data directory " + locked) &&
                         Contains("Permission denied"));
  }
  ::chmod(locked.c_str(), 0755);
#endif
}

#ifdef EMBER_TRAIN_BINARY
TEST_CASE("disk full while writing a checkpoint: a clear error, the previous checkpoint intact, no partial file left",
          "[reliability][diskfull][train]") {
  if (!test::have_fashion_mnist()) return;
  test::TempDir dir;
  if (!tmpfs_available(dir)) {
    WARN("cannot mount a tmpfs here (needs root and unshare -m): the disk-full case is not run");
    return;
  }
  const std::string bin = EMBER_TRAIN_BINARY;
  const std::string common = " --model cnn --micro-batch 8 --accum 2 --epochs 1 --limit-train 48 --limit-test 20"
                             " --device cpu --threads 1 --no-progress --seed 4";
  // A good checkpoint after 1 step (CNN + BN + AdamW state: 252 KB), written on the normal disk.
  const std::string good = dir.file("good.safetensors");
  REQUIRE(std::system((bin + common + " --steps 1 --save " + good + " >" + dir.file("good.log") + " 2>&1").c_str()) == 0);
  const std::string saved = test::read_bytes(good);
  const std::string mnt = dir.file("mnt"), out = dir.file("out");
  std::filesystem::create_directory(mnt);
  std::filesystem::create_directory(out);
  // Inside a private mount namespace: a 400 KiB tmpfs holds the checkpoint but not a second copy, so the
  // next checkpoint's temporary file runs out of space. The results are copied out before the tmpfs goes.
  auto run_full = [&](const std::string& size, const std::string& args, const std::string& tag) {
    const std::string script = "mount -t tmpfs -o size=" + size + " tmpfs " + mnt + " && " +
                               (args.find("--resume") != std::string::npos ? "cp " + good + " " + mnt + "/ck.safetensors && " : "") +
                               bin + common + args + " >" + out + "/" + tag + ".log 2>&1; echo $? >" + out + "/" + tag +
                               ".rc; ls -A " + mnt + " >" + out + "/" + tag + ".ls; cp " + mnt +
                               "/ck.safetensors " + out + "/" + tag + ".safetensors 2>/dev/null; true";
    REQUIRE(std::system(("unshare -m sh -c '" + script + "'").c_str()) == 0);
    return std::atoi(test::read_bytes(out + "/" + tag + ".rc").c_str());
  };
  const std::string ck = mnt + "/ck.safetensors";
  SECTION("the next checkpoint does not fit beside the last good one") {
    const int rc = run_full("400k", " --resume " + ck + " --save " + ck + " --checkpoint-every 1", "resume");
    const std::string log = test::read_bytes(out + "/resume.log");
    INFO(log);
    CHECK(rc == 1);
    CHECK_THAT(log, Contains("ember-train: error: writing " + ck) && Contains("No space left on device"));
    CHECK(test::read_bytes(out + "/resume.safetensors") == saved);  // the last good checkpoint, unchanged
    CHECK(test::read_bytes(out + "/resume.ls") == "ck.safetensors\n");  // the partial temporary file was removed
  }
  SECTION("not even the first checkpoint fits: nothing is left behind") {
    const int rc = run_full("100k", " --save " + ck, "first");
    const std::string log = test::read_bytes(out + "/first.log");
    INFO(log);
    CHECK(rc == 1);
    CHECK_THAT(log, Contains("No space left on device"));
    CHECK(test::read_bytes(out + "/first.ls").empty());
  }
}
#endif

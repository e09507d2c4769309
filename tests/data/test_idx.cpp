/// @file tests/data/test_idx.cpp @brief IDX reader: plain and gzip files, and every kind of corrupted or truncated input.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "core/error.h"
#include "data/fashion_mnist.h"
#include "data/idx.h"
#include "tests/train/temp_dir.h"

using namespace ember;
using namespace ember::data;
using Catch::Matchers::Contains;

namespace {

/// IDX bytes for a 2x2x3 unsigned-byte array holding 0..11.
std::string good_idx() {
  std::string s{'\0', '\0', '\x08', '\x03', 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3};
  for (int i = 0; i < 12; ++i) s.push_back(static_cast<char>(i));
  return s;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

std::vector<uint8_t> as_vec(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

}  // namespace

TEST_CASE("IDX reader parses plain and gzip files", "[data][idx]") {
  test::TempDir dir;
  test::write_bytes(dir.file("a.idx"), good_idx());
  write_gz(dir.file("a.idx.gz"), good_idx());
  for (const std::string name : {"a.idx", "a.idx.gz"}) {
    IdxArray a = read_idx(dir.file(name));
    CHECK(a.dims == std::vector<int64_t>{2, 2, 3});
    REQUIRE(a.data.size() == 12);
    for (int i = 0; i < 12; ++i) CHECK(a.data[static_cast<size_t>(i)] == i);
  }
}

TEST_CASE("IDX reader rejects malformed content with a clear error", "[data][idx]") {
  std::string s = good_idx();
  SECTION("too short for the magic") {
    CHECK_THROWS_WITH(parse_idx(as_vec(s.substr(0, 3)), "x"), Contains("truncated") && Contains("magic"));
  }
  SECTION("bad magic") {
    s[0] = 1;
    CHECK_THROWS_WITH(parse_idx(as_vec(s), "x"), Contains("bad magic"));
  }
  SECTION("unsupported element type") {
    s[2] = 0x0D;
    CHECK_THROWS_WITH(parse_idx(as_vec(s), "x"), Contains("0xd") && Contains("float"));
  }
  SECTION("zero dimensions") {
    s[3] = 0;
    CHECK_THROWS_WITH(parse_idx(as_vec(s), "x"), Contains("zero dimensions"));
  }
  SECTION("truncated header") {
    CHECK_THROWS_WITH(parse_idx(as_vec(s.substr(0, 10)), "x"), Contains("truncated header"));
  }
  SECTION("truncated data") {
    CHECK_THROWS_WITH(parse_idx(as_vec(s.substr(0, s.size() - 1)), "x"),
                      Contains("truncated") && Contains("need 12 data bytes but only 11"));
  }
  SECTION("trailing bytes") {
    s.push_back('\x7f');
    CHECK_THROWS_WITH(parse_idx(as_vec(s), "x"), Contains("1 unexpected bytes"));
  }
}

TEST_CASE("IDX reader rejects missing, truncated and corrupt gzip files", "[data][idx]") {
  test::TempDir dir;
  CHECK_THROWS_WITH(read_idx(dir.file("missing.gz")), Contains("cannot open"));

  // A larger payload so the compressed stream has a body worth cutting.
  std::string big{'\0', '\0', '\x08', '\x01', 0, 0, 0x40, 0};
  for (int i = 0; i < 0x4000; ++i) big.push_back(static_cast<char>((i * 7919) % 251));
  write_gz(dir.file("full.gz"), big);
  REQUIRE(read_idx(dir.file("full.gz")).data.size() == 0x4000);
  const std::string gz = test::read_bytes(dir.file("full.gz"));

  test::write_bytes(dir.file("cut.gz"), gz.substr(0, gz.size() / 2));
  CHECK_THROWS_WITH(read_idx(dir.file("cut.gz")), Contains("cut.gz") && Contains("gzip"));

  std::string bad = gz;
  for (size_t i = 20; i < 40; ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5A);
  test::write_bytes(dir.file("bad.gz"), bad);
  CHECK_THROWS_WITH(read_idx(dir.file("bad.gz")), Contains("bad.gz") && Contains("gzip"));

  // A complete stream whose trailer (CRC-32) is wrong.
  std::string crc = gz;
  crc[crc.size() - 6] = static_cast<char>(crc[crc.size() - 6] ^ 1);
  test::write_bytes(dir.file("crc.gz"), crc);
  CHECK_THROWS_WITH(read_idx(dir.file("crc.gz")), Contains("crc.gz") && Contains("gzip"));
}

TEST_CASE("Fashion-MNIST loader checks image/label agreement", "[data][idx]") {
  test::TempDir dir;
  std::string images{'\0', '\0', '\x08', '\x03', 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2};
  images += std::string(8, '\x10');
  std::string labels{'\0', '\0', '\x08', '\x01', 0, 0, 0, 3, 1, 2, 3};
  write_gz(dir.file("t10k-images-idx3-ubyte.gz"), images);
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), labels);
  CHECK_THROWS_WITH(load_fashion_mnist(dir.path().string(), Split::Test),
                    Contains("2 images") && Contains("3 labels"));
  CHECK_THROWS_WITH(load_fashion_mnist(dir.path().string(), Split::Train), Contains("train-images-idx3-ubyte"));
  labels = std::string{'\0', '\0', '\x08', '\x01', 0, 0, 0, 2, 1, 10};
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), labels);
  CHECK_THROWS_WITH(load_fashion_mnist(dir.path().string(), Split::Test), Contains("label 10"));
}

TEST_CASE("Fashion-MNIST test split loads from the Debian package", "[data][idx]") {
  if (!std::filesystem::exists(kDefaultFashionMnistDir)) {
    WARN("dataset-fashion-mnist not installed; skipping");
    return;
  }
  auto ds = load_fashion_mnist(kDefaultFashionMnistDir, Split::Test);
  REQUIRE(ds->size() == 10000);
  CHECK(ds->sample_shape() == Shape{1, 28, 28});
  // Known content of the published file: the first test image is an ankle boot (class 9), the second a
  // pullover (2); each of the 10 classes has exactly 1000 test images.
  const std::vector<int64_t> idx{0, 1};
  Batch b = ds->get_batch(idx);
  CHECK(b.y.to_vector<int64_t>() == std::vector<int64_t>{9, 2});
  std::vector<int64_t> all(10000);
  for (int64_t i = 0; i < 10000; ++i) all[static_cast<size_t>(i)] = i;
  std::vector<int64_t> count(10, 0);
  for (int64_t y : ds->get_batch(all).y.to_vector<int64_t>()) ++count[static_cast<size_t>(y)];
  CHECK(count == std::vector<int64_t>(10, 1000));
}

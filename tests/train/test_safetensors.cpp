/// @file tests/train/test_safetensors.cpp @brief safetensors: exact PyTorch-compatible byte layout, round trips, and rejection of bad files.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/safetensors.h"
#include "tests/train/temp_dir.h"

using namespace ember;
using Catch::Matchers::Contains;

namespace {

std::string le64(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}

/// The file for a = F32[2] {1, -2}, b = I64[1] {3}, metadata {k: v}, computed by hand from the spec:
/// JSON of 133 bytes padded with 3 spaces to 136 = 0x88, then 8 + 8 data bytes.
std::string expected_bytes() {
  const std::string json =
      R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}})";
  std::string s = std::string("\x88\0\0\0\0\0\0\0", 8) + json + "   ";
  s += std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);  // 1.0f, -2.0f little-endian
  s += std::string("\x03\0\0\0\0\0\0\0", 8);                 // int64 3
  return s;
}

NamedTensors sample_tensors() {
  return {{"a", from_vector(std::vector<float>{1.0f, -2.0f}, {2})},
          {"b", from_vector(std::vector<int64_t>{3}, {1}, TensorOptions{}.set_dtype(DType::i64))}};
}

}  // namespace

TEST_CASE("safetensors writes the exact reference layout", "[train][safetensors]") {
  const std::string want = expected_bytes();
  REQUIRE(want.size() == 8 + 136 + 16);
  CHECK(serialize_safetensors(sample_tensors(), {{"k", "v"}}) == want);

  test::TempDir dir;
  save_safetensors(dir.file("x.safetensors"), sample_tensors(), {{"k", "v"}});
  CHECK(test::read_bytes(dir.file("x.safetensors")) == want);
  // Atomic write leaves no temporary file behind.
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()) == 1);
}

TEST_CASE("safetensors round trip keeps names, dtypes, shapes, values and metadata", "[train][safetensors]") {
  Tensor m = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, TensorOptions{}.set_dtype(DType::f64));
  NamedTensors in{{"fc1.weight", from_vector(std::vector<float>{0.5f, -1.25f, 3e-8f, 7.0f}, {2, 2})},
                     {"bn1.num_batches_tracked", from_vector(std::vector<int64_t>{42}, {}, TensorOptions{}.set_dtype(DType::i64))},
                     {"m_t", m.t()},  // non-contiguous view: written in logical order
                     {"empty", zeros({0, 4})}};
  test::TempDir dir;
  save_safetensors(dir.file("r.safetensors"), in, {{"epoch", "3"}, {"note", "x y"}});
  SafetensorsContent out = load_safetensors(dir.file("r.safetensors"));
  REQUIRE(out.tensors.size() == 4);
  CHECK(out.metadata == SafetensorsMetadata{{"epoch", "3"}, {"note", "x y"}});
  CHECK(out.find("fc1.weight").to_vector<float>() == std::vector<float>{0.5f, -1.25f, 3e-8f, 7.0f});
  CHECK(out.find("bn1.num_batches_tracked").shape() == Shape{});
  CHECK(out.find("bn1.num_batches_tracked").to_vector<int64_t>() == std::vector<int64_t>{42});
  CHECK(out.find("m_t").shape() == Shape{3, 2});
  CHECK(out.find("m_t").to_vector<double>() == std::vector<double>{1, 4, 2, 5, 3, 6});
  CHECK(out.find("empty").shape() == Shape{0, 4});
  CHECK_FALSE(out.find("nope").defined());
}

TEST_CASE("safetensors rejects malformed and truncated input naming the problem", "[train][safetensors]") {
  const std::string good = expected_bytes();
  auto parse = [](const std::string& s) { return parse_safetensors(s, "f"); };
  CHECK_NOTHROW(parse(good));
  CHECK_THROWS_WITH(parse(good.substr(0, 5)), Contains("truncated") && Contains("8-byte header length"));
  CHECK_THROWS_WITH(parse(good.substr(0, 100)), Contains("truncated: header length 136"));
  CHECK_THROWS_WITH(parse(good.substr(0, good.size() - 4)), Contains("truncated") && Contains("'b'"));
  CHECK_THROWS_WITH(parse(good + "xxxxxxxx"), Contains("8 bytes after the last tensor"));
  CHECK_THROWS_WITH(parse(le64(1ull << 40) + "{}"), Contains("exceeds the 100 MB limit"));

  auto with_header = [](const std::string& json, const std::string& data) {
    return le64(json.size()) + json + data;
  };
  CHECK_THROWS_WITH(parse(with_header("{\"a\":", "")), Contains("not valid JSON"));
  CHECK_THROWS_WITH(parse(with_header("[1]     ", "")), Contains("does not start with '{'"));
  CHECK_THROWS_WITH(parse(with_header(R"({"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})", "xx")),
                    Contains("'a'") && Contains("BF16 is not supported"));
  CHECK_THROWS_WITH(parse(with_header(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,2]}})", "xx")),
                    Contains("Q7 is unknown"));
  CHECK_THROWS_WITH(parse(with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'x'))),
                    Contains("hold 8 bytes but F32[3] needs 12"));
  CHECK_THROWS_WITH(parse(with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, 'x'))),
                    Contains("non-negative"));
  CHECK_THROWS_WITH(parse(with_header(R"({"a":{"dtype":"F32","shape":[1]}})", "")), Contains("data_offsets"));
  CHECK_THROWS_WITH(parse(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 'x'))),
                    Contains("hole in the data before tensor 'a'"));
  CHECK_THROWS_WITH(parse(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                      std::string(8, 'x'))),
                    Contains("'b' overlaps"));
  CHECK_THROWS_WITH(parse(with_header(R"({"__metadata__":{"k":1}})", "")), Contains("value of 'k' is not a string"));
  CHECK_THROWS_WITH(load_safetensors("/nonexistent/dir/x.safetensors"), Contains("cannot open"));
}

TEST_CASE("safetensors writer rejects bad names", "[train][safetensors]") {
  Tensor t = zeros({1});
  CHECK_THROWS_WITH(serialize_safetensors({{"a", t}, {"a", t}}), Contains("duplicate tensor name 'a'"));
  CHECK_THROWS_WITH(serialize_safetensors({{"", t}}), Contains("empty tensor name"));
  CHECK_THROWS_WITH(serialize_safetensors({{"__metadata__", t}}), Contains("__metadata__"));
  CHECK_THROWS_WITH(save_safetensors("/nonexistent/dir/x.safetensors", {{"a", t}}), Contains("temporary file"));
}

TEST_CASE("safetensors file loads in Python's safetensors when it is installed", "[train][safetensors]") {
  if (std::system("python3 -c 'import safetensors, numpy' >/dev/null 2>&1") != 0) {
    WARN("python3 safetensors/numpy not installed; skipping the cross-check");
    return;
  }
  test::TempDir dir;
  save_safetensors(dir.file("p.safetensors"), sample_tensors(), {{"k", "v"}});
  const std::string cmd = "python3 -c \"from safetensors.numpy import load_file; d = load_file('" +
                          dir.file("p.safetensors") +
                          "'); assert d['a'].tolist() == [1.0, -2.0] and d['b'].tolist() == [3]\"";
  CHECK(std::system(cmd.c_str()) == 0);
}

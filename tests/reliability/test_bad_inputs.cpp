/// @file tests/reliability/test_bad_inputs.cpp @brief Regression tests for the reader bugs the fuzzers and the sanitizers found: each malformed input is an ember::Error naming the problem (before: overflow, huge allocation or deep recursion).
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"
#include "data/idx.h"

using namespace ember;
using Catch::Matchers::Contains;

namespace {

/// A safetensors file whose header is `json`, followed by `data`.
std::string with_header(const std::string& json, const std::string& data = "") {
  std::string out;
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out + json + data;
}

std::vector<uint8_t> be32(std::vector<uint8_t> head, std::initializer_list<uint32_t> dims) {
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) head.push_back(static_cast<uint8_t>(d >> s));
  return head;
}

}  // namespace

TEST_CASE("safetensors: shapes whose element or byte count overflows are rejected, not allocated",
          "[reliability][safetensors]") {
  // 2^61 x 1 doubles = 2^64 bytes: the byte count used to wrap to 0 and match data_offsets [0, 0].
  CHECK_THROWS_WITH(parse_safetensors(with_header(R"({"a":{"dtype":"F64","shape":[2305843009213693952,1],"data_offsets":[0,0]}})"), "wrap.st"),
                    Contains("wrap.st") && Contains("tensor 'a'") && Contains("too large"));
  // A dimension above INT64_MAX used to become a negative int64.
  CHECK_THROWS_WITH(parse_safetensors(with_header(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}})", "abcd"), "neg.st"),
                    Contains("too large"));
  // Non-zero dimensions whose product overflows int64 (strides and counts would be undefined behaviour).
  CHECK_THROWS_WITH(parse_safetensors(with_header(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})"), "mul.st"),
                    Contains("too large"));
  // A zero dimension beside large ones is a valid empty tensor.
  const SafetensorsContent ok = parse_safetensors(with_header(R"({"a":{"dtype":"F32","shape":[0,1099511627776],"data_offsets":[0,0]}})"), "empty.st");
  REQUIRE(ok.tensors.size() == 1);
  CHECK(ok.tensors[0].second.numel() == 0);
}

TEST_CASE("safetensors: a deeply nested value in the header is reported by its type, without recursing",
          "[reliability][safetensors]") {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  CHECK_THROWS_WITH(parse_safetensors(with_header(R"({"a":{"dtype":"F32","shape":[)" + deep + R"(],"data_offsets":[0,0]}})"), "deep.st"),
                    Contains("shape entries must be non-negative integers, got a JSON array"));
  CHECK_THROWS_WITH(parse_safetensors(with_header(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[{"x":1},4]}})"), "obj.st"),
                    Contains("data_offsets must be non-negative integers, got a JSON object"));
}

TEST_CASE("IDX: dimensions whose product overflows int64 are rejected before multiplying", "[reliability][idx]") {
  // 3 dims of 2^32 - 1: the running product used to overflow int64 (undefined behaviour) after the second.
  const auto huge = be32({0, 0, 8, 3}, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu});
  CHECK_THROWS_WITH(data::parse_idx(huge, "huge.idx"), Contains("huge.idx") && Contains("exceed 4 GiB"));
  const auto big = be32({0, 0, 8, 2}, {0x10000u, 0x10001u});  // just over 4 GiB
  CHECK_THROWS_WITH(data::parse_idx(big, "big.idx"), Contains("exceed 4 GiB"));
  const auto empty = be32({0, 0, 8, 2}, {0u, 0xFFFFFFFFu});  // zero elements: valid
  CHECK(data::parse_idx(empty, "empty.idx").numel() == 0);
}

TEST_CASE("IDX: a file that cannot be opened names the reason", "[reliability][idx]") {
  CHECK_THROWS_WITH(data::read_idx("/nonexistent/train-images-idx3-ubyte.gz"),
                    Contains("/nonexistent/train-images-idx3-ubyte.gz") && Contains("No such file or directory"));
}

/// @file tests/emulator/fake_nccl_rank.cpp @brief One rank of an emulated-NCCL test as its own process (ember_fake_nccl_rank), started N times by test_fake_nccl.cpp; prints its results on stdout.
//
// Usage: ember_fake_nccl_rank SCENARIO NRANKS RANK DEVICE SEGMENT_NAME [MS]
//   SCENARIO: collectives | init | arrive | silent (stays MS ms) | abort (after MS ms)
// Exit status 0 once the scenario ran (its outcome is in the output), 2 on a bad command line.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/emulator/fake_nccl_scenarios.h"

using namespace fake_nccl_test;

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s SCENARIO NRANKS RANK DEVICE SEGMENT_NAME [MS]\n", argv[0]);
    return 2;
  }
  const std::string scenario = argv[1];
  const int nranks = std::atoi(argv[2]), rank = std::atoi(argv[3]), device = std::atoi(argv[4]);
  const ncclUniqueId id = id_from_name(argv[5]);
  const int ms = argc > 6 ? std::atoi(argv[6]) : 0;
  if (cudaSetDevice(device) != cudaSuccess) {
    std::fprintf(stderr, "rank %d: cudaSetDevice(%d) failed\n", rank, device);
    return 2;
  }
  Results out;
  if (scenario == "collectives") out = scenario_collectives(nranks, rank, id);
  else if (scenario == "init") out = scenario_init(nranks, rank, id);
  else if (scenario == "arrive") out = scenario_arrive(nranks, rank, id);
  else if (scenario == "silent") out = scenario_silent(nranks, rank, id, ms);
  else if (scenario == "abort") out = scenario_abort(nranks, rank, id, ms);
  else {
    std::fprintf(stderr, "unknown scenario %s\n", scenario.c_str());
    return 2;
  }
  print(out, stdout);
  return 0;
}

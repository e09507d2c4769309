/// @file benchmarks/bench_util.h @brief Benchmark registration helpers: bench_name(...) and add(name, fn, args...), which turns an exception into a skipped row.
#pragma once
#include <benchmark/benchmark.h>

#include <exception>
#include <string>
#include <string_view>
#include <type_traits>

namespace ember::bench {

/// Concatenates strings and numbers by appending (sidesteps g++ 12's false -Wrestrict on `"lit" + std::string`).
template <class... P>
std::string bench_name(const P&... parts) {
  std::string out;
  auto add_part = [&out](const auto& p) {
    if constexpr (std::is_arithmetic_v<std::decay_t<decltype(p)>>)
      out.append(std::to_string(p));
    else
      out.append(std::string_view(p));
  };
  (add_part(parts), ...);
  return out;
}

/// Registers fn(state, args...) under `name`, real time. An exception (an ember::Error from a kernel, an
/// allocation failure) marks the row as skipped with its message instead of ending the run.
template <class F, class... A>
benchmark::internal::Benchmark* add(const std::string& name, F fn, A... args) {
  return benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) {
           try {
             fn(s, args...);
           } catch (const std::exception& e) {
             s.SkipWithError(e.what());
           }
         })
      ->UseRealTime();
}

}  // namespace ember::bench

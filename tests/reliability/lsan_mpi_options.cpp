/// @file tests/reliability/lsan_mpi_options.cpp @brief Sanitized builds only: LeakSanitizer options for the programs that run under mpirun (ember_mpi_tests, ember_mpi_rank_failure, ember-train, ember-train-lm).
// Open MPI's plugins are built without frame pointers and dlclose'd at MPI_Finalize, so with the fast
// unwinder a leak report inside them ends in "<unknown module>" and the suppressions for Open MPI
// (scripts/lsan.supp) cannot match it. The slow (DWARF) unwinder reaches the libmpi frames. It doubles
// the cost of malloc-heavy tests, so only these programs use it; the flag must come from the executable
// (the runtime looks the hook up there), hence this file, linked by tests/reliability/CMakeLists.txt.
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __lsan_default_options() { return "fast_unwind_on_malloc=0"; }
#endif

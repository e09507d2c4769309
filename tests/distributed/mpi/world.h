/// @file tests/distributed/mpi/world.h @brief The MPI process group shared by the multi-rank tests (created once in main).
#pragma once
#include <memory>

#include "distributed/process_group.h"

namespace ember::test::dist {

/// All ranks of the mpirun job (backend "mpi").
distributed::ProcessGroup& world();
std::shared_ptr<distributed::ProcessGroup> world_ptr();

}  // namespace ember::test::dist

# Install rules and the CMake package (docs/api.md, "Using Ember from your own CMake project"):
#   cmake --install build --prefix P
# puts the public headers under P/include/ember/<folder>/ (a user keeps writing #include "core/tensor.h"),
# the libraries under P/lib, ember-train under P/bin and the package under P/lib/cmake/Ember/:
#   Ember::ember          libember.so, the CPU backend and everything device-generic
#   Ember::cuda           libember_cuda.so, the real CUDA backend (when it was built)
#   Ember::cuda_emulated  libember_cuda_emu.so + libember_emu.so, the CUDA backend on the kernel emulator
#   Ember::mpi            libember_mpi.so, the MPI process group (when MPI was found)
# The backends register themselves from static initializers, so linking one of those targets is all a
# program does to get its devices; their interface links them with --no-as-needed, so the linker keeps
# them although the program references none of their symbols. Each optional target has its own targets
# file, loaded only when it was installed, so a CPU-only program never links (or needs) CUDA.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The folders whose headers are public: every *.h below them, except the CUDA backend's internals
# (kernels/cuda/: device code, the emulator, test hooks) and any header that includes a CUDA, NCCL or
# MPI API header, which a user of the package does not necessarily have. Folders that do not exist
# (yet) are skipped. tests/scripts/test_install.sh checks that every installed header compiles from
# the installed tree alone.
set(EMBER_INSTALL_HEADER_DIRS core kernels ops nn optim data distributed)
set(EMBER_INSTALL_HEADER_EXCLUDE "^kernels/cuda/")
set(EMBER_INSTALL_FOREIGN_API_INCLUDE
    "^[ \t]*#[ \t]*include[ \t]*<(cuda|cuda_runtime|cuda_runtime_api|cublas_v2|cublasLt|cudnn|nccl|mpi)\\.h>")
set(EMBER_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/ember)

foreach(dir IN LISTS EMBER_INSTALL_HEADER_DIRS)
  if(NOT IS_DIRECTORY ${CMAKE_SOURCE_DIR}/${dir})
    continue()
  endif()
  file(GLOB_RECURSE headers CONFIGURE_DEPENDS RELATIVE ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/${dir}/*.h)
  foreach(h IN LISTS headers)
    if(h MATCHES "${EMBER_INSTALL_HEADER_EXCLUDE}")
      continue()
    endif()
    file(STRINGS ${CMAKE_SOURCE_DIR}/${h} foreign REGEX "${EMBER_INSTALL_FOREIGN_API_INCLUDE}")
    if(foreign)
      continue()
    endif()
    get_filename_component(h_dir ${h} DIRECTORY)
    install(FILES ${CMAKE_SOURCE_DIR}/${h} DESTINATION ${EMBER_INSTALL_INCLUDEDIR}/${h_dir})
  endforeach()
endforeach()

# Installed binaries find the installed libraries ($ORIGIN-relative) and the libraries they were linked
# against outside the build tree (the OpenMP OpenBLAS folder, cuDNN/NCCL wheels), as in the build tree.
file(RELATIVE_PATH ember_bin_to_lib /${CMAKE_INSTALL_BINDIR} /${CMAKE_INSTALL_LIBDIR})
function(ember_install_rpath target origin_to_lib)
  set_target_properties(${target} PROPERTIES INSTALL_RPATH "$ORIGIN/${origin_to_lib}"
                                             INSTALL_RPATH_USE_LINK_PATH TRUE)
endfunction()

# Include folders of the source tree are for the build only; the installed targets use P/include/ember.
# (The targets were declared with plain source paths; this wraps them in $<BUILD_INTERFACE:...>.)
function(ember_build_only_includes target)
  foreach(property INTERFACE_INCLUDE_DIRECTORIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES)
    get_target_property(dirs ${target} ${property})
    if(NOT dirs)
      continue()
    endif()
    set(fixed)
    foreach(d IN LISTS dirs)
      cmake_path(IS_PREFIX CMAKE_SOURCE_DIR "${d}" in_source)
      cmake_path(IS_PREFIX CMAKE_BINARY_DIR "${d}" in_build)
      if(in_source OR in_build)
        list(APPEND fixed "$<BUILD_INTERFACE:${d}>")
      else()
        list(APPEND fixed "${d}")
      endif()
    endforeach()
    set_target_properties(${target} PROPERTIES ${property} "${fixed}")
  endforeach()
endfunction()

set(EMBER_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Ember)

# ember_install_library(target export_name [component]): installs the library with its own export set
# (the core's EmberTargets, or Ember<component>Targets for an optional backend).
function(ember_install_library target export_name)
  ember_build_only_includes(${target})
  ember_install_rpath(${target} ".")
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  set(export_set EmberTargets)
  if(ARGC GREATER 2)
    set(export_set Ember_${ARGV2}Targets)
  endif()
  install(TARGETS ${target} EXPORT ${export_set} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endfunction()

# ember_install_backend(component target...): an optional, self-registering library set; the first
# target is the one a user links (Ember::<component>).
function(ember_install_backend component)
  foreach(t IN LISTS ARGN)
    if(NOT TARGET ${t})
      return()
    endif()
  endforeach()
  list(GET ARGN 0 main)
  # Installed consumers keep it although they call none of its functions (static registrars).
  target_link_options(${main} INTERFACE "$<INSTALL_INTERFACE:-Wl,--no-as-needed>")
  foreach(t IN LISTS ARGN)
    if(t STREQUAL main)
      ember_install_library(${t} ${component} ${component})
    else()
      string(REGEX REPLACE "^ember_" "" name ${t})
      ember_install_library(${t} ${name} ${component})
    endif()
  endforeach()
  install(EXPORT Ember_${component}Targets NAMESPACE Ember:: DESTINATION ${EMBER_CMAKE_DIR})
endfunction()

ember_install_library(ember ember)
target_include_directories(ember INTERFACE $<INSTALL_INTERFACE:${EMBER_INSTALL_INCLUDEDIR}>)
install(EXPORT EmberTargets NAMESPACE Ember:: DESTINATION ${EMBER_CMAKE_DIR})

ember_install_backend(cuda ember_cuda)
ember_install_backend(cuda_emulated ember_cuda_emu ember_emu)
ember_install_backend(mpi ember_mpi)

if(TARGET ember-train)
  ember_install_rpath(ember-train ${ember_bin_to_lib})
  install(TARGETS ember-train RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/EmberConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/EmberConfig.cmake INSTALL_DESTINATION ${EMBER_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/EmberConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/EmberConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/EmberConfigVersion.cmake
        DESTINATION ${EMBER_CMAKE_DIR})

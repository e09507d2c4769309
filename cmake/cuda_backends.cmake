# The CUDA backend, built twice from the same sources:
#  - ember_cuda      : kernels/cuda/*.cu compiled by nvcc for CMAKE_CUDA_ARCHITECTURES (80;90), plus the
#                      cuBLAS/cuDNN wrappers in kernels/cuda/lib; needs a GPU at run time.
#  - ember_cuda_emu  : the same .cu files compiled by g++ as C++ through kernels/cuda/emulator, so every
#                      hand-written kernel runs on the CPU in the tests, plus the library wrappers of
#                      kernels/cuda/lib that the emulated libraries (ember_emu) run: GEMM is the cuBLAS
#                      wrapper on the emulated cuBLAS, as on a GPU, and the NCCL process group runs over
#                      the emulated NCCL.
# Both are shared libraries that register themselves into the kernel tables from static initializers.
file(GLOB EMBER_CUDA_KERNELS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/cuda/*.cu)
file(GLOB EMBER_CUDA_HOST CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/cuda/*.cpp)
# The NCCL process group (distributed/nccl) is built into the CUDA libraries too: it needs the CUDA runtime.
file(GLOB EMBER_CUDA_LIB CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/cuda/lib/*.cpp
     ${CMAKE_CURRENT_SOURCE_DIR}/distributed/nccl/*.cpp)

if(EMBER_EMULATOR AND EMBER_CUDA_KERNELS)
  find_package(Boost 1.74 REQUIRED COMPONENTS context)
  # The emulator's compiled part and the emulated libraries (cuBLAS, cuDNN, NCCL fakes). Its include/
  # folder holds the fake <cuda_runtime.h>, <cublas_v2.h>, <cudnn.h> and <nccl.h>, so host code written
  # for the real headers compiles unchanged against it.
  file(GLOB EMBER_EMU_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/cuda/emulator/*.cpp)
  add_library(ember_emu SHARED ${EMBER_EMU_SOURCES})
  target_include_directories(ember_emu PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}
                                              ${CMAKE_CURRENT_SOURCE_DIR}/kernels/cuda/emulator/include)
  target_compile_options(ember_emu PRIVATE ${EMBER_WARNINGS})
  target_link_libraries(ember_emu PUBLIC Boost::context Threads::Threads PRIVATE rt)
  target_link_options(ember_emu PRIVATE -Wl,--no-undefined)
  set(EMU_WRAPPERS)
  foreach(cu ${EMBER_CUDA_KERNELS})
    get_filename_component(name ${cu} NAME_WE)
    set(wrapper ${CMAKE_CURRENT_BINARY_DIR}/emu/${name}.emu.cpp)
    file(CONFIGURE OUTPUT ${wrapper} CONTENT "// Generated: compiles ${cu} with g++ for the kernel emulator.\n#include \"${cu}\"\n")
    list(APPEND EMU_WRAPPERS ${wrapper})
  endforeach()
  # Every library wrapper of kernels/cuda/lib runs on the emulator's fakes, as on a GPU.
  add_library(ember_cuda_emu SHARED ${EMU_WRAPPERS} ${EMBER_CUDA_HOST} ${EMBER_CUDA_LIB})
  target_compile_definitions(ember_cuda_emu PUBLIC EMBER_CUDA_EMULATED=1)
  target_compile_options(ember_cuda_emu PRIVATE ${EMBER_WARNINGS})
  target_link_libraries(ember_cuda_emu PUBLIC ember ember_emu)
  # nvcc contracts a * b + c into one FMA (--fmad=true, its default); g++ does so only when told to and
  # with FMA instructions. The emulated kernels are compiled that way when this machine has them, so a
  # product that must be rounded on its own (__fmul_rn) but is not fails the bitwise CPU comparisons of
  # the emulated tests, as it would on a GPU (docs/emulator.md).
  include(CheckCXXSourceRuns)
  set(CMAKE_REQUIRED_FLAGS "-mfma")
  check_cxx_source_runs("int main() { return __builtin_cpu_supports(\"fma\") ? 0 : 1; }" EMBER_EMU_FMA)
  unset(CMAKE_REQUIRED_FLAGS)
  if(EMBER_EMU_FMA)
    target_compile_options(ember_cuda_emu PRIVATE -ffp-contract=fast -mfma)
  endif()
endif()

if(EMBER_HAVE_CUDA AND EMBER_CUDA_KERNELS)
  # CMake 3.25 knows nvcc's -std flags only up to C++17; the targets use C++20 (CMAKE_CXX_STANDARD).
  if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  add_library(ember_cuda SHARED ${EMBER_CUDA_KERNELS} ${EMBER_CUDA_HOST} ${EMBER_CUDA_LIB})
  target_compile_definitions(ember_cuda PUBLIC EMBER_CUDA_RUNTIME=1)
  target_compile_options(ember_cuda PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:${EMBER_WARNINGS}>
    $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcompiler=-Wall>)
  if(EMBER_WERROR)
    target_compile_options(ember_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
  endif()
  # cuDNN and NCCL: in the CUDA toolkit's folders, the system's, or (EMBER_CUDNN_ROOT / EMBER_NCCL_ROOT,
  # searched first) a folder with include/ and lib/ such as the nvidia-cudnn-cu13 and nvidia-nccl-cu13
  # wheels' nvidia/cudnn and nvidia/nccl, whose lib/ holds only the versioned libcudnn.so.9 / libnccl.so.2.
  set(EMBER_CUDNN_ROOT "" CACHE PATH "cuDNN folder with include/cudnn.h and lib/ (searched first)")
  set(EMBER_NCCL_ROOT "" CACHE PATH "NCCL folder with include/nccl.h and lib/ (searched first)")
  foreach(pkg CUDNN NCCL)
    set(${pkg}_LIB_HINTS ${CUDAToolkit_LIBRARY_DIR})
    set(${pkg}_INCLUDE_HINTS ${CUDAToolkit_INCLUDE_DIRS})
    if(EMBER_${pkg}_ROOT)
      list(PREPEND ${pkg}_LIB_HINTS ${EMBER_${pkg}_ROOT}/lib)
      list(PREPEND ${pkg}_INCLUDE_HINTS ${EMBER_${pkg}_ROOT}/include)
    endif()
  endforeach()
  # NAMES_PER_DIR: a folder's versioned library before an unversioned one in a later folder.
  find_library(CUDNN_LIB NAMES cudnn libcudnn.so.9 NAMES_PER_DIR HINTS ${CUDNN_LIB_HINTS} REQUIRED)
  find_library(NCCL_LIB NAMES nccl libnccl.so.2 NAMES_PER_DIR HINTS ${NCCL_LIB_HINTS} /usr/local/lib REQUIRED)
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDNN_INCLUDE_HINTS} REQUIRED)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_INCLUDE_HINTS} /usr/local/include REQUIRED)
  target_include_directories(ember_cuda SYSTEM PUBLIC ${CUDNN_INCLUDE_DIR} ${NCCL_INCLUDE_DIR})
  target_link_libraries(ember_cuda PUBLIC ember CUDA::cudart CUDA::cublas CUDA::cublasLt ${CUDNN_LIB} ${NCCL_LIB})
endif()

# ember_link_cuda_backend(target real|emulated): links that CUDA backend when it was built (else the
# target stays CPU-only).
function(ember_link_cuda_backend target which)
  if(which STREQUAL "real" AND TARGET ember_cuda)
    target_link_options(${target} PRIVATE -Wl,--no-as-needed)
    target_link_libraries(${target} PRIVATE ember_cuda)
  elseif(which STREQUAL "emulated" AND TARGET ember_cuda_emu)
    target_link_options(${target} PRIVATE -Wl,--no-as-needed)
    target_link_libraries(${target} PRIVATE ember_cuda_emu)
  endif()
endfunction()

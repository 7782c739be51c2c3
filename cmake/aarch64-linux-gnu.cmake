# Cross build for aarch64 Linux with Debian's cross compiler (g++-aarch64-linux-gnu), tested
# under qemu-user (qemu-aarch64). This is how Brink's NEON kernels are proven correct without
# ARM hardware.
#
#   scripts/build.sh aarch64            # configures build-aarch64/ with this file, builds
#                                       # brink_rt + brink_kernel_tests (-O2)
#   qemu-aarch64 -L /usr/aarch64-linux-gnu build-aarch64/brink_kernel_tests
#   ctest --test-dir build-aarch64      # the same, through CMAKE_CROSSCOMPILING_EMULATOR
#
# scripts/test.sh runs it in CI (skipped with a message when the cross compiler is missing).
#
# What the cross build has: only Debian's x86 protobuf/ONNX libraries are installed, so it is
# configured with -DBRINK_RUNTIME_ONLY=ON: the runtime library brink_rt (src/core, ir, ops,
# kernels, runtime; *_neon.cc files are compiled, *_avx2/_avx512.cc are not) and the test
# executable brink_kernel_tests, made of tests/kernels/*_test.cc and linked with brink_rt and
# a GoogleTest built from /usr/src/googletest. Kernel tests that need ONNX import belong in
# tests/unit/ instead; see tests/kernels/README.md for how to add one.
#
# NEON is part of the aarch64 baseline, so *_neon.cc files need no extra flags. qemu runs
# NEON code correctly but says nothing about speed: benchmark on real hardware.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Libraries and headers for the target come from Debian's cross sysroot, programs from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest (and gtest test discovery) run target binaries through qemu-user.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)

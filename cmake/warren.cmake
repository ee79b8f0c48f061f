# Build helpers: one module = one folder = one target (style.md, practice 1).
#
#   warren_cc_library(NAME <name> SRCS ... [HDRS ...] [DEPS ...] [PUBLIC_DEPS ...])
#     -> target warren_<name>, alias warren::<name>. DEPS link PRIVATE, PUBLIC_DEPS PUBLIC.
#   warren_cc_test(NAME <name> SRCS ... [DEPS ...])
#     -> GoogleTest executable <name>, registered with CTest (label "unit").
#   warren_cc_binary(NAME <name> SRCS ... [DEPS ...])

set(WARREN_WARNINGS -Wall -Wextra -Wpedantic -Werror -Wnon-virtual-dtor -Wimplicit-fallthrough)

function(warren_apply_flags target)
  target_compile_options(${target} PRIVATE ${WARREN_WARNINGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_BINARY_DIR}/src)
endfunction()

function(warren_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;HDRS;DEPS;PUBLIC_DEPS" ${ARGN})
  set(target warren_${ARG_NAME})
  if(ARG_SRCS)
    add_library(${target} STATIC ${ARG_SRCS} ${ARG_HDRS})
    warren_apply_flags(${target})
    target_link_libraries(${target} PRIVATE ${ARG_DEPS} PUBLIC ${ARG_PUBLIC_DEPS})
  else()
    add_library(${target} INTERFACE ${ARG_HDRS})
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR}/src
                                                   ${PROJECT_BINARY_DIR}/src)
    target_link_libraries(${target} INTERFACE ${ARG_DEPS} ${ARG_PUBLIC_DEPS})
  endif()
  add_library(warren::${ARG_NAME} ALIAS ${target})
endfunction()

function(warren_cc_test)
  if(NOT WARREN_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  warren_apply_flags(${ARG_NAME})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${ARG_NAME} DISCOVERY_MODE PRE_TEST PROPERTIES LABELS unit)
endfunction()

function(warren_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  warren_apply_flags(${ARG_NAME})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
endfunction()

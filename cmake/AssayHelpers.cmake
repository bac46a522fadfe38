# Warnings and sanitizers for every Assay target (generated code is built without -Werror).
function(assay_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wnon-virtual-dtor -Wno-unused-parameter)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wshadow=local)
  elseif(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # Checks the ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations at compile time.
    target_compile_options(${target} PRIVATE -Wthread-safety)
  endif()
  if(ASSAY_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  # TSan builds: every program carries the absl::Mutex annotations (cmake/tsan/absl_mutex_tsan.cc).
  get_target_property(type ${target} TYPE)
  if(ASSAY_SANITIZE STREQUAL "thread" AND type STREQUAL "EXECUTABLE")
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:assay_tsan_absl>)
    target_link_libraries(${target} PRIVATE ${CMAKE_DL_LIBS})
  endif()
endfunction()

if(ASSAY_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "ASSAY_FUZZ needs clang (-DCMAKE_CXX_COMPILER=clang++)")
  endif()
  # The fuzz targets run under ASan+UBSan, and so does everything built with them. libFuzzer's
  # coverage goes to the code they exercise (common/CMakeLists.txt); only they link its main.
  if(NOT ASSAY_SANITIZE)
    set(ASSAY_SANITIZE "address,undefined")
  elseif(NOT ASSAY_SANITIZE MATCHES "address")
    message(FATAL_ERROR "ASSAY_FUZZ runs under AddressSanitizer, not with ASSAY_SANITIZE=${ASSAY_SANITIZE}")
  endif()
endif()
if(ASSAY_SANITIZE)
  # For the tests' wider timing and memory bounds, the same with gcc and clang (gcc alone defines
  # __SANITIZE_ADDRESS__).
  add_compile_definitions(ASSAY_SANITIZED)
  if(ASSAY_SANITIZE MATCHES "address")
    add_compile_definitions(ASSAY_SANITIZED_ADDRESS)
  endif()
  add_compile_options(-fsanitize=${ASSAY_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${ASSAY_SANITIZE})
endif()


# assay_test(NAME SOURCES... [LIBS ...] LABELS LABEL [RESOURCE_LOCK NAME]): one GoogleTest binary per
# unit, registered with CTest under one label (unit, integration, containers, rust, ...). Tests holding
# one RESOURCE_LOCK never run at the same time.
function(assay_test name)
  cmake_parse_arguments(T "RUN_SERIAL" "RESOURCE_LOCK" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  assay_target_options(${name})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  set_target_properties(${name} PROPERTIES UNITY_BUILD OFF)  # one source: a batch would only rename it
  list(LENGTH T_LABELS label_count)
  if(NOT label_count EQUAL 1)  # gtest_discover_tests would read a second label as a property name
    message(FATAL_ERROR "assay_test(${name}): exactly one label, not '${T_LABELS}'")
  endif()
  set(props LABELS "${T_LABELS}")
  if(T_RESOURCE_LOCK)
    list(APPEND props RESOURCE_LOCK "${T_RESOURCE_LOCK}")
  endif()
  if(T_RUN_SERIAL)  # what it measures is time: no other test may load the machine meanwhile
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()

# assay_proto_library(NAME PROTOS...): a static library of the C++ messages and gRPC stubs of
# PROTOS (paths relative to the current source folder, which is also the import root); the
# generated headers are included by those paths.
function(assay_proto_library name)
  add_library(${name} STATIC ${ARGN})
  target_link_libraries(${name} PUBLIC assay_rpc)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/gen)
  file(MAKE_DIRECTORY ${out})
  target_include_directories(${name} SYSTEM PUBLIC ${out})
  protobuf_generate(TARGET ${name} LANGUAGE cpp IMPORT_DIRS ${CMAKE_CURRENT_SOURCE_DIR} PROTOC_OUT_DIR ${out})
  protobuf_generate(TARGET ${name} LANGUAGE grpc GENERATE_EXTENSIONS .grpc.pb.h .grpc.pb.cc
                    PLUGIN "protoc-gen-grpc=\$<TARGET_FILE:gRPC::grpc_cpp_plugin>"
                    IMPORT_DIRS ${CMAKE_CURRENT_SOURCE_DIR} PROTOC_OUT_DIR ${out})
endfunction()

# How our libraries reach gRPC, protobuf and abseil (assay_rpc) and yaml-cpp and RE2 (assay_text).
#
# Most programs link Debian's shared libraries. A program with the target property
# ASSAY_STATIC_DEPS (the `assay` CLI, with ASSAY_STATIC_CLI) links their static archives instead,
# in one group: a CLI command is short, and loading and relocating its 60 shared libraries was
# half of its CPU (`perf stat assay --help`: 24 ms, 12 ms with the archives). OpenSSL, the C++
# runtime and glibc stay shared, so their security updates apply at once; the rest takes effect
# when the CLI is built again. Never both kinds in one program (protobuf would register its files
# twice): a program takes one branch for every library it links.
#
# The switch is a generator expression on the program being linked ($<TARGET_PROPERTY:...> in a
# link interface reads the head target), so the same static libraries serve both kinds.
option(ASSAY_STATIC_CLI "Link the assay CLI with the static archives of gRPC, protobuf, abseil, RE2 and yaml-cpp" ON)

add_library(assay_rpc_shared INTERFACE)
target_link_libraries(assay_rpc_shared INTERFACE gRPC::grpc++ protobuf::libprotobuf
  absl::status absl::statusor absl::strings absl::str_format absl::synchronization absl::time
  absl::flat_hash_map absl::flat_hash_set)
add_library(assay_text_shared INTERFACE)
target_link_libraries(assay_text_shared INTERFACE yaml-cpp PkgConfig::RE2)

set(assay_static_deps_ok FALSE)
if(ASSAY_STATIC_CLI)
  set(archives "")
  set(missing "")
  foreach(lib grpc++ grpc upb gpr address_sorting cares re2 z protobuf yaml-cpp absl_base)
    find_library(ASSAY_STATIC_${lib} NAMES lib${lib}.a)
    if(ASSAY_STATIC_${lib})
      list(APPEND archives ${ASSAY_STATIC_${lib}})
    else()
      list(APPEND missing lib${lib}.a)
    endif()
  endforeach()
  if(missing)
    message(STATUS "ASSAY_STATIC_CLI: no ${missing}; the CLI links the shared libraries")
  else()
    # abseil is some 80 archives beside libabsl_base.a; the group takes only what is used.
    get_filename_component(absl_dir ${ASSAY_STATIC_absl_base} DIRECTORY)
    file(GLOB absl_archives ${absl_dir}/libabsl_*.a)
    list(APPEND archives ${absl_archives})
    list(REMOVE_DUPLICATES archives)
    add_library(assay_static_archives INTERFACE)
    string(JOIN "," group ${archives})
    target_link_libraries(assay_static_archives INTERFACE "$<LINK_GROUP:RESCAN,${group}>"
      OpenSSL::SSL OpenSSL::Crypto Threads::Threads ${CMAKE_DL_LIBS})
    # The headers are the same for both kinds: the shared targets' include folders.
    target_include_directories(assay_static_archives SYSTEM INTERFACE
      $<TARGET_PROPERTY:gRPC::grpc++,INTERFACE_INCLUDE_DIRECTORIES>
      $<TARGET_PROPERTY:protobuf::libprotobuf,INTERFACE_INCLUDE_DIRECTORIES>)
    set(assay_static_deps_ok TRUE)
  endif()
endif()

set(static "$<BOOL:$<TARGET_PROPERTY:ASSAY_STATIC_DEPS>>")
add_library(assay_rpc INTERFACE)
add_library(assay_text INTERFACE)
if(assay_static_deps_ok)
  target_link_libraries(assay_rpc INTERFACE "$<IF:${static},assay_static_archives,assay_rpc_shared>")
  target_link_libraries(assay_text INTERFACE "$<IF:${static},assay_static_archives,assay_text_shared>")
else()
  target_link_libraries(assay_rpc INTERFACE assay_rpc_shared)
  target_link_libraries(assay_text INTERFACE assay_text_shared)
endif()

# assay_static_deps(TARGET): TARGET links the archives (when they were found).
function(assay_static_deps target)
  if(assay_static_deps_ok)
    set_target_properties(${target} PROPERTIES ASSAY_STATIC_DEPS ON)
  endif()
endfunction()

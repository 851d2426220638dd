# Envoy's Go SDK (pinned in test/golang/go.mod) and Go plugin builds.
#
# - ENVOY_GO_API_DIR: the SDK's contrib/golang/common/go/api folder in the module cache; the host
#   compiles against its api.h, so an ABI drift fails the build rather than a request.
# - corral_go_plugin(NAME n MODULE_DIR d PACKAGE p): builds p (a main package in module d) with
#   `go build -buildmode=c-shared` into ${CMAKE_CURRENT_BINARY_DIR}/n.so; sets n_PATH.
# - corral_export_go_abi(target): links the envoyGo* host functions into an executable and
#   exports them dynamically (a Go .so resolves them at first call).

find_program(GO_EXECUTABLE go REQUIRED)
execute_process(
  COMMAND ${GO_EXECUTABLE} list -m -f "{{.Dir}}" github.com/envoyproxy/envoy
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/test/golang
  OUTPUT_VARIABLE ENVOY_SDK_DIR OUTPUT_STRIP_TRAILING_WHITESPACE
  ERROR_VARIABLE envoy_sdk_err RESULT_VARIABLE envoy_sdk_rc)
set(ENVOY_GO_API_DIR ${ENVOY_SDK_DIR}/contrib/golang/common/go/api)
if(NOT envoy_sdk_rc EQUAL 0 OR NOT EXISTS ${ENVOY_GO_API_DIR}/api.h)
  message(FATAL_ERROR "Envoy's Go SDK is not in the Go module cache; run scripts/setup.sh "
                      "(go mod download in test/golang). ${envoy_sdk_err}")
endif()
message(STATUS "Envoy Go SDK: ${ENVOY_SDK_DIR}")

function(corral_go_plugin)
  cmake_parse_arguments(A "" "NAME;MODULE_DIR;PACKAGE" "" ${ARGN})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${A_NAME}.so)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${A_MODULE_DIR}/*.go)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E env GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=1
            ${GO_EXECUTABLE} build -buildmode=c-shared -o ${out} ${A_PACKAGE}
    WORKING_DIRECTORY ${A_MODULE_DIR}
    DEPENDS ${srcs} ${A_MODULE_DIR}/go.mod ${A_MODULE_DIR}/go.sum
    COMMENT "go build -buildmode=c-shared -o ${A_NAME}.so ${A_PACKAGE}")
  add_custom_target(${A_NAME} ALL DEPENDS ${out})
  set(${A_NAME}_PATH ${out} PARENT_SCOPE)
endfunction()

function(corral_export_go_abi target)
  target_link_libraries(${target} PRIVATE corral_golang_exports)
  target_link_options(${target} PRIVATE
    -Wl,--dynamic-list=${PROJECT_SOURCE_DIR}/source/golang/exports.list)
endfunction()

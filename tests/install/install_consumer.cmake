# ctest's InstallTest: installs this build to a fresh prefix, configures and builds the project in
# consumer/ against it (find_package(shardvec), shardvec::shardvec), and runs it on a temp folder
# store. Run with cmake -P and -DBUILD_DIR= -DWORK_DIR= -DVEC0= -DVERSION_FILE= -DGENERATOR= and the
# project's install folders -DLIBDIR= -DINCLUDEDIR= -DBINDIR= (GNUInstallDirs' CMAKE_INSTALL_*).
cmake_minimum_required(VERSION 3.25)
foreach(var BUILD_DIR WORK_DIR VEC0 VERSION_FILE GENERATOR LIBDIR INCLUDEDIR BINDIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_consumer.cmake needs -D${var}=")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
foreach(file "${LIBDIR}/libshardvec.a" "${INCLUDEDIR}/shardvec/reader.h" "${BINDIR}/shardvec"
             "${LIBDIR}/cmake/shardvec/shardvecConfig.cmake" "${LIBDIR}/cmake/shardvec/shardvecConfigVersion.cmake")
  if(NOT EXISTS "${prefix}/${file}")
    message(FATAL_ERROR "not installed: ${file}")
  endif()
endforeach()
file(STRINGS "${VERSION_FILE}" version LIMIT_COUNT 1)
run("${prefix}/${BINDIR}/shardvec" --version)
if(NOT out MATCHES "^shardvec ${version}\n?$")
  message(FATAL_ERROR "the installed CLI says '${out}', VERSION says ${version}")
endif()

get_filename_component(here "${CMAKE_CURRENT_LIST_FILE}" DIRECTORY)
run("${CMAKE_COMMAND}" -S "${here}/consumer" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${prefix}")
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
run("${CMAKE_COMMAND}" -E env "XDG_CACHE_HOME=${WORK_DIR}/cache"
    "${WORK_DIR}/build/consumer" "${WORK_DIR}/store" "${VEC0}")
if(NOT out STREQUAL "rows=60 nearest=17\n")
  message(FATAL_ERROR "the consumer printed '${out}', expected 'rows=60 nearest=17'")
endif()
if(NOT EXISTS "${WORK_DIR}/store/_CURRENT")
  message(FATAL_ERROR "the consumer published no _CURRENT in ${WORK_DIR}/store")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")

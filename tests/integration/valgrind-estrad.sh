#!/bin/sh
# valgrind-estrad.sh: estrad under valgrind, for `make valgrind`.  run.sh
# starts it as it starts estrad; each process writes its report to
# $VALGRIND_DIR/vg.PID.log, which the Makefile checks afterwards.
: "${VALGRIND_DIR:?VALGRIND_DIR must name a directory for the reports}"
: "${VALGRIND_ESTRAD:?VALGRIND_ESTRAD must name the estrad binary}"
exec valgrind --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    --track-fds=no --log-file="$VALGRIND_DIR/vg.%p.log" \
    "$VALGRIND_ESTRAD" "$@"

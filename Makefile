# estrad: EST (RFC 7030) registration authority.
#
#   make            build build/estrad
#   make run        generate the dev PKI (once) and serve on 127.0.0.1:8443
#   make check      unit and integration tests
#   make check SANITIZE=address,undefined
#                   the same, built with AddressSanitizer and UBSan

CC ?= cc
SANITIZE ?=
PKGS := openssl libevent_openssl libevent_pthreads libevent libcurl jansson
CHECK_PKG := check

ifeq ($(SANITIZE),)
BUILD := build
SANFLAGS :=
else
BUILD := build-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
endif

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 \
	-Wno-unused-parameter -D_GNU_SOURCE -Isrc $(SANFLAGS) \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += $(SANFLAGS)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt -lpthread
CHECK_LIBS := $(shell pkg-config --libs $(CHECK_PKG) 2>/dev/null)

MAIN_SRC := src/cmd/main.c
LIB_SRC := $(filter-out $(MAIN_SRC),$(sort $(wildcard src/core/*.c src/cmd/*.c src/est/*.c \
	src/ra/*.c src/ca_plugins/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/check_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Fuzz targets: tests/fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput.  make
# check replays tests/fuzz/regressions/NAME through a plain driver; make fuzz
# runs libFuzzer (clang) on each for FUZZ_SECONDS.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%.c=%)
REGRESS_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 10
FUZZ_BUILD := build-fuzz
FUZZ_CC := clang
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
# Test and benchmark programs (one .c each): EST test client, load generator.
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all deps certs run check unit regress fakes integration bench tools fuzz \
	format format-check check-layers clean

all: $(BUILD)/estrad

deps:
	@./scripts/install-deps.sh

# V=1 shows the full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libestrad.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/estrad: $(BUILD)/$(MAIN_SRC:.c=.o) $(BUILD)/libestrad.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libestrad.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libestrad.a \
		$(LDFLAGS) $(CHECK_LIBS) $(LIBS)

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libestrad.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libestrad.a $(LDFLAGS) $(LIBS)

tools: $(TOOL_BIN)

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/regress_main.c $(BUILD)/libestrad.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -o $@ $< tests/fuzz/regress_main.c \
		$(BUILD)/libestrad.a $(LDFLAGS) $(LIBS)

regress: $(REGRESS_BIN)
	@rc=0; for t in $(FUZZ_NAMES); do \
		$(BUILD)/fuzz/$$t tests/fuzz/regressions/$$t || rc=1; done; \
		exit $$rc

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) \
		-fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(FUZZ_BUILD)/bin/%: tests/fuzz/%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined \
		-o $@ $< $(FUZZ_LIB_OBJ) $(LIBS)

.SECONDARY: $(FUZZ_LIB_OBJ)

# make fuzz [FUZZ_SECONDS=N]: every target for N seconds from seeds made
# by scripts/fuzz-seeds.sh plus the regression inputs; crashes land in
# build-fuzz/crashes/ and must become regression inputs once fixed.  A
# target's dictionary tests/fuzz/NAME.dict and its extra libFuzzer flags
# tests/fuzz/NAME.options (one line) are used when present; an input that
# runs longer than 25 s is a crash (a hang).
fuzz: deps $(FUZZ_NAMES:%=$(FUZZ_BUILD)/bin/%)
	@./scripts/fuzz-seeds.sh $(FUZZ_BUILD)/corpus
	@mkdir -p $(FUZZ_BUILD)/crashes
	@rc=0; for t in $(FUZZ_NAMES); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
		$(FUZZ_BUILD)/bin/$$t -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 -timeout=25 \
			$$(test -f tests/fuzz/$$t.dict && \
			   echo -dict=tests/fuzz/$$t.dict) \
			$$(cat tests/fuzz/$$t.options 2>/dev/null) \
			-artifact_prefix=$(FUZZ_BUILD)/crashes/$$t- \
			$(FUZZ_BUILD)/corpus/$$t tests/fuzz/regressions/$$t \
			> $(FUZZ_BUILD)/$$t.log 2>&1 || rc=1; \
		printf '%-22s %s\n' $$t "$$(grep -m1 stat::number_of_executed_units \
			$(FUZZ_BUILD)/$$t.log | awk '{print $$2 " executions"}')"; \
	done; exit $$rc

certs: deps
	@./scripts/mkcerts.sh certs

run: deps
	@$(MAKE) --no-print-directory all
	@./scripts/mkcerts.sh certs
	@mkdir -p logs
	./$(BUILD)/estrad -c conf/estrad.json

unit: $(UNIT_BIN)
	@rc=0; for t in $(UNIT_BIN); do \
		CK_DEFAULT_TIMEOUT=60 ./$$t || rc=1; done; exit $$rc

# Sanitized builds run several times slower: the 10,000-failure fault test
# takes about 40 s of its 60 there on an idle 2-core machine, so they get
# three times the time per test.
INTEGRATION_TIMEOUT := $(if $(SANITIZE),180,60)

integration: $(BUILD)/estrad $(TOOL_BIN)
	@ESTRAD=$(BUILD)/estrad TOOLS=$(BUILD)/tools \
		TEST_TIMEOUT=$${TEST_TIMEOUT:-$(INTEGRATION_TIMEOUT)} \
		./tests/integration/run.sh

# Benchmarks print figures; they are never part of make check.
bench: deps
	@$(MAKE) --no-print-directory all tools
	@ESTRAD=$(BUILD)/estrad TOOLS=$(BUILD)/tools ./tests/bench/run.sh

check: deps
	@./scripts/check-layers.sh
	@$(MAKE) --no-print-directory all unit
	@$(MAKE) --no-print-directory regress
	@$(MAKE) --no-print-directory fakes
	@$(MAKE) --no-print-directory integration

# make valgrind: a subset of the integration suite with every estrad run
# under valgrind (memcheck, full leak check); any error or definite or
# indirect leak in any report fails.  Slow, so never part of make check.
# Tests of the helper backend are left out: valgrind cannot run
# posix_spawn's CLONE_VFORK child, so every helper call fails under it.
VALGRIND_TESTS ?= t_request_id_and_access_log t_cacerts_without_user_agent \
	t_cacerts_chain_verifies t_enroll_basic t_enroll_client_cert t_err_ \
	t_auth_wrong_password t_auth_ra_client t_certsrv_enroll_issued \
	t_faults_ca_statuses t_pending_manual t_abuse_tls_ t_abuse_auth_matrix \
	t_abuse_slow_per_client
VALGRIND_DIR := $(BUILD)/valgrind

.PHONY: valgrind
valgrind: deps
	@$(MAKE) --no-print-directory all tools
	@rm -rf $(VALGRIND_DIR) && mkdir -p $(VALGRIND_DIR)
	@VALGRIND_DIR=$(abspath $(VALGRIND_DIR)) \
		VALGRIND_ESTRAD=$(abspath $(BUILD)/estrad) \
		ESTRAD=tests/integration/valgrind-estrad.sh TOOLS=$(BUILD)/tools \
		TEST_TIMEOUT=300 ./tests/integration/run.sh $(VALGRIND_TESTS)
	@n=$$(ls $(VALGRIND_DIR)/vg.*.log | wc -l); \
		done=$$(grep -l 'ERROR SUMMARY:' $(VALGRIND_DIR)/vg.*.log | wc -l); \
		bad=$$(grep -lE 'ERROR SUMMARY: [1-9]|(definitely|indirectly) lost: [1-9]' \
		$(VALGRIND_DIR)/vg.*.log); \
		if [ -n "$$bad" ]; then echo "valgrind: reports with errors:"; \
		for f in $$bad; do echo "$$f:"; grep -E 'ERROR SUMMARY|lost:' $$f; done; exit 1; fi; \
		echo "valgrind: $$done estrad runs checked to their exit (of $$n reports; the others are forked helper children), 0 errors, 0 definite or indirect leaks"

# The fake CA servers are checked against real clients (curl) before the
# integration tests trust them.
fakes:
	@bash tests/fakes/test_fake_certsrv.sh
	@bash tests/fakes/test_fake_dogtag.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# Includes point down the layers: cmd > est > ra > ca_plugins > core.
check-layers:
	@./scripts/check-layers.sh

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san $(FUZZ_BUILD)

# make install [PREFIX=/usr/local] [DESTDIR=...] [ESTRAD_BIN=...]: the
# binary, the man pages, an example configuration, the systemd unit and
# the logrotate snippet.  ESTRAD_BIN installs a binary built elsewhere.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
ESTRAD_BIN ?= $(BUILD)/estrad
INSTALL ?= install

.PHONY: install
install: $(ESTRAD_BIN)
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/logrotate.d
	$(INSTALL) -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/estrad
	$(INSTALL) -m 0755 $(ESTRAD_BIN) $(DESTDIR)$(SBINDIR)/estrad
	$(INSTALL) -m 0644 man/estrad.8 $(DESTDIR)$(MANDIR)/man8/estrad.8
	$(INSTALL) -m 0644 man/estrad.json.5 \
		$(DESTDIR)$(MANDIR)/man5/estrad.json.5
	$(INSTALL) -m 0640 conf/estrad.json \
		$(DESTDIR)$(SYSCONFDIR)/estrad/estrad.json.example
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		packaging/estrad.service >$(DESTDIR)$(UNITDIR)/estrad.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/estrad.service
	$(INSTALL) -m 0644 packaging/estrad.logrotate \
		$(DESTDIR)$(SYSCONFDIR)/logrotate.d/estrad

-include $(LIB_OBJ:.o=.d) $(BUILD)/$(MAIN_SRC:.c=.d)

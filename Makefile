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

MAIN_SRC := src/est/main.c
LIB_SRC := $(filter-out $(MAIN_SRC),$(sort $(wildcard src/est/*.c \
	src/ra/*.c src/ca_plugins/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/check_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Test and benchmark programs (one .c each): EST test client, load generator.
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all deps certs run check unit integration bench tools format \
	format-check clean

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

integration: $(BUILD)/estrad $(TOOL_BIN)
	@ESTRAD=$(BUILD)/estrad TOOLS=$(BUILD)/tools \
		./tests/integration/run.sh

# Benchmarks print figures; they are never part of make check.
bench: deps
	@$(MAKE) --no-print-directory all tools
	@ESTRAD=$(BUILD)/estrad TOOLS=$(BUILD)/tools ./tests/bench/run.sh

check: deps
	@$(MAKE) --no-print-directory all unit
	@$(MAKE) --no-print-directory integration

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(BUILD)/$(MAIN_SRC:.c=.d)

# etcfs top-level Makefile.
#   make            build bin/etcfsd bin/etcfsctl bin/etcfs bin/etcfs-bench
#   make check      install missing packages, build, run every test
#   make asan       the same tests on an ASan+UBSan build (build-asan/, bin-asan/)
#   make fuzz       libFuzzer targets (clang) in bin-fuzz/
#   make run        3-member local cluster mounted at ./mnt (see README)
#   make install    PREFIX=/usr/local DESTDIR= (and /sbin/mount.etcfs)
#   make lint       clang-format check (make format rewrites), raft purity
PREFIX ?= /usr/local
DESTDIR ?=
SANITIZE ?=
BUILD ?= build
BIN ?= bin
CC ?= cc

PKGS := fuse3 lmdb libzstd libcrypto libssl jansson libprotobuf-c libnghttp2
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Debian's nng ships no pkg-config file.
NNG_LIBS := $(shell pkg-config --libs nng 2>/dev/null || echo -lnng)

WARN := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARN) -D_GNU_SOURCE -MMD -MP -pthread $(PKG_CFLAGS)
LDLIBS := $(PKG_LIBS) $(NNG_LIBS) -pthread -lm
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# Module folders (server/node/, fs/ops/, ...) are picked up one level deep;
# common/ is what the server, the mount and the CLI share.
COMMON_SRC := $(wildcard common/*.c)
PROTO_SRC := $(wildcard proto/*.c)
RAFT_SRC := $(wildcard server/raft/*.c)
SERVER_LIB_SRC := $(filter-out server/main.c $(RAFT_SRC),$(wildcard server/*.c server/*/*.c))
CLI_SRC := $(wildcard cli/*.c)
FS_SRC := $(wildcard fs/*.c fs/*/*.c)
BENCH_SRC := $(wildcard bench/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
SIM_SRC := $(wildcard tests/sim/*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

# etcd's gRPC messages: proto/etcd/*.proto -> protoc-c -> $(BUILD)/gen (never
# committed) -> libetcdpb.a.  Generated code is compiled without -Werror: its
# warnings are protoc-c's, not ours.
ETCD_PROTOS := $(wildcard proto/etcd/*.proto)
PB_GEN := $(BUILD)/gen/proto/etcd
PB_C := $(patsubst proto/etcd/%.proto,$(PB_GEN)/%.pb-c.c,$(ETCD_PROTOS))
PB_H := $(PB_C:.c=.h)
PB_OBJ := $(PB_C:.c=.o)
CFLAGS += -I$(PB_GEN)
COMMON_OBJ := $(call obj,$(COMMON_SRC))
PROTO_OBJ := $(call obj,$(PROTO_SRC))
RAFT_OBJ := $(call obj,$(RAFT_SRC))
SERVER_LIB_OBJ := $(call obj,$(SERVER_LIB_SRC))

PROGS := $(BIN)/etcfsd $(BIN)/etcfsctl
ifneq ($(FS_SRC),)
PROGS += $(BIN)/etcfs
endif
ifneq ($(BENCH_SRC),)
PROGS += $(BIN)/etcfs-bench
endif
UNIT_BINS := $(patsubst tests/unit/%.c,$(BIN)/tests/%,$(UNIT_SRC))
SIM_BINS := $(if $(SIM_SRC),$(BIN)/tests/raft_sim)
# Helper programs of the mount tests (tests/tools/), not tests themselves.
TOOL_BINS := $(patsubst tests/tools/%.c,$(BIN)/tests/%,$(wildcard tests/tools/*.c))

.PHONY: all check asan fuzz run install clean lint format deps test-bins
all: $(PROGS) test-bins

test-bins: $(UNIT_BINS) $(SIM_BINS) $(TOOL_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# One protoc-c run makes every file (rpc.proto imports the others).
$(PB_C) $(PB_H) &: $(ETCD_PROTOS)
	@mkdir -p $(PB_GEN)
	protoc-c --c_out=$(PB_GEN) -Iproto/etcd $(notdir $(ETCD_PROTOS))
$(PB_GEN)/%.pb-c.o: $(PB_GEN)/%.pb-c.c $(PB_H)
	$(CC) $(filter-out -Werror,$(CFLAGS)) -c -o $@ $<
$(BUILD)/libetcdpb.a: $(PB_OBJ)
	@rm -f $@; ar rcs $@ $^
# Whatever includes a generated header waits for it.
$(call obj,$(wildcard server/grpc/*.c tests/unit/test_grpc*.c)): | $(PB_H)

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libproto.a: $(PROTO_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libraft.a: $(RAFT_OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libserver.a: $(SERVER_LIB_OBJ)
	@rm -f $@; ar rcs $@ $^

SERVER_LIBS := $(BUILD)/libserver.a $(BUILD)/libraft.a $(BUILD)/libproto.a $(BUILD)/libcommon.a $(BUILD)/libetcdpb.a

$(BIN)/etcfsd: $(call obj,server/main.c) $(SERVER_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ -Wl,--start-group $^ -Wl,--end-group $(LDLIBS)
$(BIN)/etcfsctl: $(call obj,$(CLI_SRC)) $(BUILD)/libproto.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ -Wl,--start-group $^ -Wl,--end-group $(LDLIBS)
$(BIN)/etcfs: $(call obj,$(FS_SRC)) $(BUILD)/libproto.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ -Wl,--start-group $^ -Wl,--end-group $(LDLIBS)
$(BIN)/etcfs-bench: $(call obj,$(BENCH_SRC)) $(BUILD)/libproto.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ -Wl,--start-group $^ -Wl,--end-group $(LDLIBS)
# Unit tests link everything but the programs' main files.
$(BIN)/tests/%: $(BUILD)/tests/unit/%.o $(SERVER_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ -Wl,--start-group $^ -Wl,--end-group $(LDLIBS)
$(TOOL_BINS): $(BIN)/tests/%: $(BUILD)/tests/tools/%.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^
$(BIN)/tests/raft_sim: $(call obj,$(SIM_SRC)) $(SERVER_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ -Wl,--start-group $^ -Wl,--end-group $(LDLIBS)

deps:
	@contrib/install-deps.sh

check: deps
	@$(MAKE) --no-print-directory all
	@tests/run.sh $(BIN)

asan: deps
	@$(MAKE) --no-print-directory all SANITIZE=1 BUILD=build-asan BIN=bin-asan
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 tests/run.sh bin-asan

FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,bin-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz: deps $(FUZZ_TARGETS)
bin-fuzz/%: tests/fuzz/%.c $(PROTO_SRC) $(RAFT_SRC) $(COMMON_SRC)
	@mkdir -p bin-fuzz
	clang -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) -o $@ $^ $(LDLIBS)

run: deps
	@$(MAKE) --no-print-directory $(PROGS)
	@contrib/run-local.sh

# mount(8) runs helpers only from /sbin (libmount's search path is
# /sbin:/sbin/fs.d:/sbin/fs, whatever PREFIX is), so mount.etcfs goes to
# MOUNT_HELPER_DIR, a link to the installed etcfs.
MOUNT_HELPER_DIR ?= /sbin
install: $(PROGS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/etcfs
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	if [ -x $(BIN)/etcfs ]; then install -d $(DESTDIR)$(MOUNT_HELPER_DIR) && ln -sf $(PREFIX)/bin/etcfs $(DESTDIR)$(MOUNT_HELPER_DIR)/mount.etcfs; fi
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(wildcard man/*.8) $(DESTDIR)$(PREFIX)/share/man/man8/
	cp -r contrib/. $(DESTDIR)$(PREFIX)/share/etcfs/

lint:
	@tests/lint/format.sh
	@tests/lint/raft_pure.sh

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan bin bin-asan bin-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

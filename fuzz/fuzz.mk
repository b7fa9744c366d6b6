# fuzz/fuzz.mk -- libFuzzer targets for the decoders of common/, the
# sanitizer build of the unit tests, and the hostile test client.
# Included from the top-level Makefile (after its own rules):
#
#   include fuzz/fuzz.mk
#
#   make fuzz                 build every target, replay its regression
#                             inputs and corpus, then fuzz it FUZZ_SECONDS
#                             (default 60) seconds
#   make fuzz-short           the same with 10 s per target (run by
#                             regress/run-tests.sh)
#   make fuzz-replay          only replay regressions and corpus (no fuzzing)
#   make fuzz-build           only build the targets (fuzz/build/fuzz_*)
#   make unit-san             the unit tests of common/ built with
#                             AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz/pgbr-rawclient  test-only client that sends crafted frames
#                             over mutual TLS (regress/t/040_hostile.pl)
#   make fuzz-seeds           regenerate fuzz/corpus/ seeds from the encoders
#   make fuzz-merge           minimise fuzz/build/corpus into fuzz/corpus
#   make fuzz-clean
#
#   FUZZ_TARGETS="manifest wal"   a subset;  FUZZ_SECONDS=600  longer runs
#
# Needs clang and its sanitizer/libFuzzer runtimes (Debian 12: clang,
# libclang-rt-14-dev).  See fuzz/README.md.

# whatever the including Makefile's default goal is, this file does not change it
FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SHORT_SECONDS ?= 10
FUZZ_TARGETS ?= frame body manifest config wal zstd
FUZZ_BUILD = fuzz/build

FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra \
	-Wno-unused-parameter -Wno-missing-field-initializers \
	-D_GNU_SOURCE -DFRONTEND -Icommon
FUZZ_LIBS = -lssl -lcrypto -lzstd -lpthread
FUZZ_HDRS = $(wildcard common/*.h)
FUZZ_COMMON_SRCS = $(sort $(wildcard common/pgbr_*.c))
# common/ with coverage for libFuzzer, and without it (unit tests, seeds)
FUZZ_OBJS = $(patsubst common/%.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_COMMON_SRCS))
FUZZ_SAN_OBJS = $(patsubst common/%.c,$(FUZZ_BUILD)/san/%.o,$(FUZZ_COMMON_SRCS))
FUZZ_BINS = $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))

$(FUZZ_BUILD)/obj/%.o: common/%.c $(FUZZ_HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined \
		-fno-sanitize-recover=all -c -o $@ $<

$(FUZZ_BUILD)/san/%.o: common/%.c $(FUZZ_HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: fuzz/targets/fuzz_%.c fuzz/targets/fuzz_common.h $(FUZZ_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all -o $@ $< $(FUZZ_OBJS) $(FUZZ_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	fuzz/run-fuzzers.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-short: fuzz-build
	fuzz/run-fuzzers.sh $(FUZZ_SHORT_SECONDS) $(FUZZ_TARGETS)

fuzz-replay: fuzz-build
	fuzz/run-fuzzers.sh 0 $(FUZZ_TARGETS)

fuzz-merge: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t $(FUZZ_BUILD)/corpus/$$t; \
		echo "# merging $(FUZZ_BUILD)/corpus/$$t into fuzz/corpus/$$t"; \
		$(FUZZ_BUILD)/fuzz_$$t -merge=1 fuzz/corpus/$$t $(FUZZ_BUILD)/corpus/$$t \
			2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' || exit 1; \
	done

# seeds: valid examples of every body, frame stream, manifest, name, header
$(FUZZ_BUILD)/gen-seeds: fuzz/gen-seeds.c $(FUZZ_SAN_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< $(FUZZ_SAN_OBJS) $(FUZZ_LIBS)

fuzz-seeds: $(FUZZ_BUILD)/gen-seeds
	$(FUZZ_BUILD)/gen-seeds fuzz/corpus

# ---- unit tests of common/ under ASan + UBSan ----

FUZZ_UNIT_SRCS = $(sort $(wildcard regress/unit/test_*.c))
FUZZ_UNIT_BINS = $(patsubst regress/unit/%.c,$(FUZZ_BUILD)/unit/%,$(FUZZ_UNIT_SRCS))

$(FUZZ_BUILD)/unit/%: regress/unit/%.c regress/unit/unit.h $(FUZZ_SAN_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -Iregress/unit -o $@ $< $(FUZZ_SAN_OBJS) $(FUZZ_LIBS)

unit-san: $(FUZZ_UNIT_BINS)
	@fail=0; for t in $(FUZZ_UNIT_BINS); do \
		echo "# $$t (ASan + UBSan)"; \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./$$t || fail=1; \
	done; \
	if [ $$fail -ne 0 ]; then echo "unit tests under sanitizers FAILED"; exit 1; fi

# ---- the hostile client of regress/t/040_hostile.pl (gcc, not installed) ----

RAWCLIENT_CC ?= $(CC)
RAWCLIENT_OBJS = $(patsubst common/%.c,common/fe/%.o,$(FUZZ_COMMON_SRCS))

RAWCLIENT_SRCS = fuzz/pgbr-rawclient.c fuzz/rawclient_steps.c

fuzz/pgbr-rawclient: $(RAWCLIENT_SRCS) fuzz/rawclient.h $(RAWCLIENT_OBJS) $(FUZZ_HDRS)
	$(RAWCLIENT_CC) -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter \
		-Wno-missing-field-initializers -Wmissing-prototypes $(PROFILE) \
		-D_GNU_SOURCE -DFRONTEND -Icommon -Ifuzz -o $@ $(RAWCLIENT_SRCS) \
		$(RAWCLIENT_OBJS) $(FUZZ_LIBS)

fuzz-clean:
	rm -rf $(FUZZ_BUILD) fuzz/pgbr-rawclient

clean: fuzz-clean

.PHONY: fuzz fuzz-short fuzz-replay fuzz-build fuzz-merge fuzz-seeds fuzz-clean unit-san

.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)

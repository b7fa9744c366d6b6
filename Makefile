# Makefile for pgbr: the extension pgbr.so (PGXS), the repository server
# pgbr-server and the tool pgbr.
#
#   make              build everything
#   make install      install all three where PostgreSQL's programs are
#   make unit         build and run the unit tests of common/
#   make PROFILE=-Werror   what CI does: warnings are errors

EXTENSION = pgbr
EXTVERSION = 0.1
MODULE_big = pgbr
DATA = sql/pgbr--$(EXTVERSION).sql
PGFILEDESC = "pgbr - WAL archiving and backups over mutual TLS"

# common/ code linked into the backend (pgbr_log is frontend only)
COMMON_SRCS = $(filter-out common/pgbr_log.c, $(sort $(wildcard common/pgbr_*.c)))
EXT_SRCS = $(sort $(wildcard extension/*.c))
OBJS = $(EXT_SRCS:.c=.o) $(COMMON_SRCS:.c=.o)

# libpq: the backup worker talks to the standby (extension/standby.c)
PG_CPPFLAGS = -I$(srcdir)/common -I$(shell $(PG_CONFIG) --includedir)
SHLIB_LINK = -lssl -lcrypto -lzstd -L$(shell $(PG_CONFIG) --libdir) -lpq

# no LLVM bitcode: the JIT has nothing to gain from this code
override with_llvm := no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: a changed struct in a header must
# rebuild every object of the extension that sees it
$(OBJS): $(wildcard common/*.h extension/*.h)


# ---- frontend programs: no server include path, -DFRONTEND ----

FE_INCLUDEDIR := $(shell $(PG_CONFIG) --includedir)
FE_CFLAGS = -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wmissing-prototypes -Wformat-security -Wno-format-truncation \
	-D_GNU_SOURCE -DFRONTEND -Icommon -I$(FE_INCLUDEDIR) $(PROFILE) $(FE_EXTRA_CFLAGS)
FE_LIBS = -lssl -lcrypto -lzstd -lpthread

FE_COMMON_OBJS = $(patsubst common/%.c, common/fe/%.o, $(sort $(wildcard common/pgbr_*.c)))
SERVER_OBJS = $(patsubst %.c, %.fe.o, $(sort $(wildcard repo-server/*.c)))
TOOL_OBJS = $(patsubst %.c, %.fe.o, $(sort $(wildcard tool/*.c)))
COMMON_HDRS = $(wildcard common/*.h)

common/fe/%.o: common/%.c $(COMMON_HDRS)
	@mkdir -p common/fe
	$(CC) $(FE_CFLAGS) -c -o $@ $<

repo-server/%.fe.o: repo-server/%.c $(COMMON_HDRS) $(wildcard repo-server/*.h)
	$(CC) $(FE_CFLAGS) -c -o $@ $<

tool/%.fe.o: tool/%.c $(COMMON_HDRS) $(wildcard tool/*.h)
	$(CC) $(FE_CFLAGS) -c -o $@ $<

# libcurl: the S3 back end of the repository (repo-server/s3.c)
SERVER_LIBS = -lcurl

pgbr-server: $(SERVER_OBJS) $(FE_COMMON_OBJS)
	$(CC) $(FE_CFLAGS) -o $@ $^ $(SERVER_LIBS) $(FE_LIBS)

pgbr: $(TOOL_OBJS) $(FE_COMMON_OBJS)
	$(CC) $(FE_CFLAGS) -o $@ $^ -L$(shell $(PG_CONFIG) --libdir) -lpq $(FE_LIBS)

all: pgbr-server pgbr

install: install-programs

install-programs: pgbr-server pgbr
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) pgbr-server '$(DESTDIR)$(bindir)/pgbr-server'
	$(INSTALL_PROGRAM) pgbr '$(DESTDIR)$(bindir)/pgbr'

uninstall: uninstall-programs

uninstall-programs:
	rm -f '$(DESTDIR)$(bindir)/pgbr-server' '$(DESTDIR)$(bindir)/pgbr'

# ---- unit tests of common/ ----

UNIT_SRCS = $(sort $(wildcard regress/unit/test_*.c))
UNIT_BINS = $(UNIT_SRCS:.c=)

regress/unit/%: regress/unit/%.c $(wildcard regress/unit/*.h) $(FE_COMMON_OBJS)
	$(CC) $(FE_CFLAGS) -Iregress/unit -o $@ $< $(FE_COMMON_OBJS) $(FE_LIBS)

# the SigV4 and S3 XML test also links the pure S3 code of repo-server/
S3_PURE_OBJS = repo-server/s3_sign.fe.o repo-server/s3_xml.fe.o

regress/unit/test_s3_sign: regress/unit/test_s3_sign.c regress/unit/unit.h $(S3_PURE_OBJS) $(FE_COMMON_OBJS)
	$(CC) $(FE_CFLAGS) -Iregress/unit -Irepo-server -o $@ $< $(S3_PURE_OBJS) $(FE_COMMON_OBJS) $(FE_LIBS)

# the delta hashing test also links the tool's restore_hash.c
regress/unit/test_restore_hash: regress/unit/test_restore_hash.c regress/unit/unit.h tool/restore_hash.fe.o tool/restore_hash.h $(FE_COMMON_OBJS)
	$(CC) $(FE_CFLAGS) -Iregress/unit -Itool -o $@ $< tool/restore_hash.fe.o $(FE_COMMON_OBJS) $(FE_LIBS)

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "# $$t"; ./$$t || fail=1; done; \
	if [ $$fail -ne 0 ]; then echo "unit tests FAILED"; exit 1; fi

# ---- storage conformance: the same checks against any repo1-type ----
#
#   make storage-conformance
#   regress/storage-conformance /path/to/pgbr.conf [stanza]

STORAGE_OBJS = $(patsubst %.c, %.fe.o, $(sort $(wildcard repo-server/storage*.c repo-server/s3*.c)))

regress/storage-conformance: regress/unit/storage_conformance.c regress/unit/unit.h $(STORAGE_OBJS) $(FE_COMMON_OBJS)
	$(CC) $(FE_CFLAGS) -Iregress/unit -Irepo-server -o $@ $< $(STORAGE_OBJS) $(FE_COMMON_OBJS) $(SERVER_LIBS) $(FE_LIBS)

storage-conformance: regress/storage-conformance

# ---- benchmarks (root; uses the installed pgbr; prints tables) ----

bench: bench-wal bench-backup

bench-wal:
	bash bench/bench.sh

bench-backup:
	bash bench/bench-backup.sh

# posix repository against an S3 bucket (a Ceph RGW it starts on 127.0.0.1)
bench-s3:
	bash bench/bench-s3.sh

.PHONY: unit storage-conformance install-programs uninstall-programs bench bench-wal bench-backup bench-s3

EXTRA_CLEAN = pgbr-server pgbr common/fe repo-server/*.fe.o tool/*.fe.o $(UNIT_BINS) tmp_check \
	regress/storage-conformance

# fuzzing, sanitizer unit tests, hostile test client (fuzz/README.md)
include fuzz/fuzz.mk

# the sanitizer build of test_s3_sign needs the S3 code of repo-server/ too
$(FUZZ_BUILD)/san/repo-server/%.o: repo-server/%.c $(FUZZ_HDRS) $(wildcard repo-server/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -c -o $@ $<

$(FUZZ_BUILD)/unit/test_s3_sign: regress/unit/test_s3_sign.c regress/unit/unit.h $(FUZZ_SAN_OBJS) \
		$(FUZZ_BUILD)/san/repo-server/s3_sign.o $(FUZZ_BUILD)/san/repo-server/s3_xml.o
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -Iregress/unit -Irepo-server -o $@ $< \
		$(FUZZ_BUILD)/san/repo-server/s3_sign.o $(FUZZ_BUILD)/san/repo-server/s3_xml.o \
		$(FUZZ_SAN_OBJS) $(FUZZ_LIBS)

# ... and that of test_restore_hash the tool's restore_hash.c
$(FUZZ_BUILD)/san/tool/%.o: tool/%.c $(FUZZ_HDRS) $(wildcard tool/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -Itool -c -o $@ $<

$(FUZZ_BUILD)/unit/test_restore_hash: regress/unit/test_restore_hash.c regress/unit/unit.h \
		$(FUZZ_SAN_OBJS) $(FUZZ_BUILD)/san/tool/restore_hash.o
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -Iregress/unit -Itool -o $@ $< \
		$(FUZZ_BUILD)/san/tool/restore_hash.o $(FUZZ_SAN_OBJS) $(FUZZ_LIBS)

# Copyright (c) pgbr contributors
#
# The repository's file system fills up.  pgbr-server keeps its repository
# (repo1-path) on a small file system that this test fills with a file of
# its own, while a real cluster archives to it through archive_library =
# 'pgbr' and runs backups:
#
#   WAL     with 512 kB left, segments that compress to 1.5 MB are pushed:
#           each push writes part of its file, then fails.  The segments
#           stay .ready, pg_stat_archiver.failed_count grows until
#           PostgreSQL's archiver gives up for now, the PostgreSQL log and
#           the server log say "No space left on device"; nothing
#           half-written is left in the archive (no temporary file, the
#           space is free again), listed or served (archive-get of a failed
#           segment exits 1 and writes nothing).  Once space is freed
#           archiving resumes by itself, without a reload, and every
#           segment comes back byte-identical, stored once.
#   backup  a full backup that runs out of space mid-copy (2 MB left), and
#           one with no space at all, fail with an ERROR naming the cause;
#           neither is listed by pgbr_info() nor "pgbr info" nor has a
#           manifest, their directories go away; with
#           space freed the next backup works and is the only one there.
#
# The small file system comes from regress/run-tests.sh, which mounts a
# tmpfs (80 MB) as root and passes it in PGBR_SMALL_FS: the test runs as an
# unprivileged user and cannot mount.  Without it the test FAILS: a skipped
# disk-full test would let a regression through unnoticed.
#
# Waking the archiver: after three failures PostgreSQL's archiver sleeps
# until new WAL arrives, a signal comes or 60 s pass.  While waiting for it
# to catch up once space is back, the test adds a segment every 5 s, as any
# live system would; elsewhere it sends pg_reload_conf() as t/010_archive.pl
# does.

use strict;
use warnings;

use Digest::SHA;
use Errno qw(ENOSPC);
use Fcntl qw(O_WRONLY O_CREAT O_EXCL);
use File::Find;
use File::Temp ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use PgbrTest;

my $ARCHIVE_WAIT = 90;    # archiver catches up once space is back
my $FAIL_WAIT    = 30;    # the archiver reports a failure
my $LOG_WAIT     = 15;    # a log line appears
my $MAX_SMALL_FS = 1024 * 1024 * 1024;    # "small": filling it is quick
my $ENOSPC_RE    = qr/No space left on device/;

###########################################################################
# The small file system
###########################################################################

my $SMALL = $ENV{PGBR_SMALL_FS};
if (!defined $SMALL || $SMALL eq '')
{
	fail('PGBR_SMALL_FS names a small file system for the repository');
	diag 'PGBR_SMALL_FS is not set.  regress/run-tests.sh mounts a tmpfs for this'
	  . ' test when it runs as root (sudo ./regress/run-tests.sh); otherwise set'
	  . ' PGBR_SMALL_FS to a small (< 1 GB) file system that the test user can'
	  . ' write to, e.g. a tmpfs mounted with size=80m,uid=$(id -u).';
	done_testing();
	exit 0;
}

# (size, available) of the file system holding $dir, in bytes
sub fs_space
{
	my ($dir) = @_;
	my $out = `df -B1 --output=size,avail '$dir' 2>&1`;
	return $out =~ /^\s*(\d+)\s+(\d+)\s*$/m ? ($1, $2) : ();
}

my ($fs_size, $fs_avail) = fs_space($SMALL);
if (!-d $SMALL || !-w $SMALL || !defined $fs_size)
{
	fail("PGBR_SMALL_FS=$SMALL is a writable directory");
	done_testing();
	exit 0;
}
if ($fs_size > $MAX_SMALL_FS)
{
	fail("PGBR_SMALL_FS=$SMALL is a small file system");
	diag "its file system has $fs_size bytes: this test fills it, give it one of"
	  . ' at most 1 GB (regress/run-tests.sh mounts an 80 MB tmpfs as root)';
	done_testing();
	exit 0;
}
note "small file system $SMALL: $fs_size bytes, $fs_avail available";

# this test's own directory on it (another run may have used the file system)
my $work = File::Temp::tempdir('diskfull_XXXX', DIR => $SMALL,
	CLEANUP => !defined $ENV{PG_TEST_NOCLEAN});
my $repo   = "$work/repo";
my $filler = "$work/filler";

# Fills the file system with $filler, leaving about $leave bytes free
# (0: none at all).  Returns the filler's size.
sub fill
{
	my ($leave) = @_;
	$leave ||= 0;
	unlink $filler;
	sysopen(my $fh, $filler, O_WRONLY | O_CREAT | O_EXCL, 0600)
	  or die "could not create $filler: $!";
	my $size = 0;
	# big chunks first, then page by page until not even one byte fits
	foreach my $chunk (1024 * 1024, 4096, 1)
	{
		my $buf = "\xA5" x $chunk;
		while (1)
		{
			my $n = syswrite($fh, $buf);
			if (!defined $n)
			{
				last if $! == ENOSPC;
				die "could not write $filler: $!";
			}
			$size += $n;
			last if $n < $chunk;
		}
	}
	if ($leave)
	{
		$size = $size > $leave ? $size - $leave : 0;
		truncate($fh, $size) or die "could not truncate $filler: $!";
	}
	close $fh or die "could not close $filler: $!";
	my (undef, $avail) = fs_space($SMALL);
	note "filler of $size bytes, $avail bytes left on $SMALL";
	return $size;
}

sub unfill
{
	unlink $filler or die "could not remove $filler: $!";
	my (undef, $avail) = fs_space($SMALL);
	note "filler removed, $avail bytes available on $SMALL";
	return;
}

###########################################################################
# Repository server, cluster
###########################################################################

my $certdir  = PgbrTest::tmpdir('certs');
my $ca       = PgbrTest::make_ca($certdir, 'ca');
my $srv_cert = PgbrTest::make_cert($certdir, $ca, 'backup-srv', server => 1);
my $pg1      = PgbrTest::make_cert($certdir, $ca, 'pg1-srv');

my $server = PgbrTest::start_server(
	cert      => $srv_cert,
	ca        => $ca,
	auth      => ['pg1-srv=demo'],
	repo_path => $repo,
	log_level => 'detail');
note 'pgbr-server pid ' . $server->pid . " port " . $server->port . ", repository $repo";

my $confdir = PgbrTest::tmpdir('conf');
my $getdir  = PgbrTest::tmpdir('get');
my $conf    = "$confdir/pg1.conf";

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
PgbrTest::client_conf(
	$conf,
	port  => $server->port,
	cert  => $pg1,
	ca    => $ca,
	extra => {
		'process-max'     => 2,
		'start-fast'      => 'y',
		'archive-timeout' => 60,
		'compress-level'  => 3,
	},
	sections => {
		demo => {
			PgbrTest::pg1_options($node),
		}
	});
$node->append_conf(
	'postgresql.conf', qq(
archive_mode = on
archive_library = 'pgbr'
shared_preload_libraries = 'pgbr'
pgbr.config = '$conf'
pgbr.stanza = 'demo'
max_worker_processes = 16
wal_keep_size = '2GB'
max_wal_size = '1GB'
autovacuum = off
log_min_messages = info
));
$node->start;

###########################################################################
# Helpers (as in t/010_archive.pl)
###########################################################################

sub sql
{
	my ($query) = @_;
	return $node->safe_psql('postgres', $query);
}

sub status_dir { return $node->data_dir . '/pg_wal/archive_status'; }

sub has_status
{
	my ($name, $status) = @_;
	return -e status_dir() . "/$name.$status";
}

sub ready_files
{
	opendir(my $dh, status_dir()) or die "opendir: $!";
	my @r = sort map { /^(.*)\.ready$/ ? $1 : () } readdir($dh);
	closedir $dh;
	return @r;
}

sub archiver_stats
{
	my ($archived, $failed) = split /\|/,
	  sql('SELECT archived_count, failed_count FROM pg_stat_archiver');
	return { archived => $archived, failed => $failed };
}

sub wait_until { return PgbrTest::wait_until(@_); }

# Polls until no .ready file is left, waking the archiver every 5 s:
# with pg_reload_conf(), or with $by_wal with a new segment (new WAL wakes
# the archiver without a reload, which would also make pgbr re-read its
# configuration and could hide a session that stays broken).  Returns true
# on success.
sub wait_archived
{
	my ($timeout, $by_wal) = @_;
	my $deadline  = time() + $timeout;
	my $next_wake = time() + 5;
	while (1)
	{
		my @ready = ready_files();
		return 1 unless @ready;
		if (time() > $deadline)
		{
			diag "still .ready after ${timeout}s: @ready";
			return 0;
		}
		if (time() >= $next_wake)
		{
			if ($by_wal) { switch_segments(1); }
			else         { sql('SELECT pg_reload_conf()'); }
			$next_wake = time() + 5;
		}
		usleep(200_000);
	}
}

# completes $n segments; returns their names.  With $noise, each holds
# about 1.5 MB of random bytes that compression cannot shrink.
sub switch_segments
{
	my ($n, $noise) = @_;
	my $one =
	  $noise
	  ? "INSERT INTO noise SELECT (SELECT decode(string_agg(md5(random()::text || s::text), ''), 'hex')"
	  . " FROM generate_series(1, 98304) s);\n"
	  : "INSERT INTO burst SELECT g, md5(random()::text) FROM generate_series(1, 500) g;\n";
	$one .= "SELECT pg_walfile_name(pg_switch_wal());\n";
	return split /\n/, sql($one x $n);
}

sub sha256_file
{
	my ($path) = @_;
	return Digest::SHA->new(256)->addfile($path, 'b')->hexdigest;
}

# SHA-256 of each segment in pg_wal once it is complete
sub wal_sums
{
	my (@names) = @_;
	my %sum;
	foreach my $n (@names)
	{
		wait_until(30, sub { has_status($n, 'ready') || has_status($n, 'done') })
		  or die "segment $n never completed";
		$sum{$n} = sha256_file($node->data_dir . "/pg_wal/$n");
	}
	return \%sum;
}

# archive-get of each segment: the number that came back identical
sub retrieve_all
{
	my ($sums) = @_;
	my ($good, $bad) = (0, 0);
	foreach my $n (sort keys %$sums)
	{
		my $dest = "$getdir/$n";
		unlink $dest;
		my ($rc, $out, $err) = PgbrTest::run_pgbr("--config=$conf",
			'--stanza=demo', 'archive-get', $n, $dest);
		my $why;
		if (!defined $rc || $rc != 0) { $why = 'exit ' . ($rc // 'none') . ": $err"; }
		elsif (!-f $dest)             { $why = 'exit 0 but no file'; }
		elsif ((my $got = sha256_file($dest)) ne $sums->{$n})
		{
			$why = "SHA-256 $got, pg_wal has $sums->{$n}";
		}
		if (defined $why)
		{
			diag "archive-get $n: $why" if $bad++ < 3;
			next;
		}
		$good++;
		unlink $dest;
	}
	return $good;
}

sub node_log
{
	my ($off) = @_;
	return slurp_file($node->logfile, $off);
}

# Files under the stanza's archive (relative names).
sub archive_files
{
	my @f;
	my $top = "$repo/demo/archive";
	return () unless -d $top;
	find(
		{
			wanted => sub { push @f, substr($File::Find::name, length($top) + 1) if -f $_ },
			no_chdir => 1
		},
		$top);
	return sort @f;
}

# Temporary files (names starting with '.') anywhere in the archive.
sub archive_temp_files
{
	return grep { m{(^|/)\.} } archive_files();
}

# Stored files named after WAL file $name (complete or temporary).
sub archive_files_of
{
	my ($name) = @_;
	return grep { m{(^|/)\.?\Q$name\E} } archive_files();
}

# Archive files that are neither temporary nor "<wal>-<sha256>.raw|zst".
sub archive_odd_files
{
	return grep {
		!m{(^|/)\.}
		  && !m{^[0-9A-F]{16}/[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?-[0-9a-f]{64}\.(raw|zst)$}
		  && !m{^timeline/[0-9A-F]{8}\.history-[0-9a-f]{64}\.(raw|zst)$}
	} archive_files();
}

###########################################################################
# 1. Archiving works while there is space
###########################################################################

sql('CREATE EXTENSION pgbr');
like(sql('SELECT pgbr_stanza_create()'), qr/demo/, 'stanza created');
like(sql('SELECT pgbr_check()'), qr/successfully archived/,
	'pgbr_check() succeeds with the repository on the small file system');
sql('CREATE TABLE burst (i int, t text)');
sql('CREATE TABLE noise (b bytea); ALTER TABLE noise ALTER COLUMN b SET STORAGE EXTERNAL');

my @before = switch_segments(3);
my $sums   = wal_sums(@before);
ok(wait_archived($ARCHIVE_WAIT), '3 segments archived while there is space');

###########################################################################
# 2. No space left: pushes fail cleanly
###########################################################################

# 512 kB left, and segments of 1.5 MB of random bytes: every push writes
# part of its file before the file system is full.
my $LEAVE = 512 * 1024;
fill($LEAVE);
my (undef, $avail0) = fs_space($SMALL);
my $stats0  = archiver_stats();
my $pg_off  = -s $node->logfile;
my $srv_off = $server->log_size;

my @full      = switch_segments(3, 'noise');
my $full_sums = wal_sums(@full);
ok(wait_until($FAIL_WAIT, sub { archiver_stats()->{failed} > $stats0->{failed} }),
	'with the file system full, the archiver fails (failed_count grows)');
ok(wait_until($LOG_WAIT, sub { node_log($pg_off) =~ $ENOSPC_RE }),
	'the PostgreSQL log says "No space left on device"')
  or diag node_log($pg_off);
if (node_log($pg_off) =~ /^(.*$ENOSPC_RE.*)$/m) { note "PostgreSQL log: $1"; }
ok(defined $server->wait_for_log([$ENOSPC_RE], $srv_off, $LOG_WAIT),
	'the pgbr-server log says "No space left on device"')
  or diag $server->log_content($srv_off);
if ($server->log_content($srv_off) =~ /^(.*$ENOSPC_RE.*)$/m) { note "server log: $1"; }

# a whole retry cycle of the archiver: three attempts, then it gives up
# for now and waits (for new WAL, or 60 s); once failed_count stands still
# no push is in flight
ok(wait_until($FAIL_WAIT, sub { archiver_stats()->{failed} >= $stats0->{failed} + 3 }),
	'it keeps retrying (failed_count grows by 3 or more)');
ok( wait_until($LOG_WAIT,
		sub { node_log($pg_off) =~ /failed too many times, will try again later/ }),
	'until PostgreSQL\'s archiver gives up for now');
ok( wait_until(
		$FAIL_WAIT,
		sub {
			my $f = archiver_stats()->{failed};
			usleep(2_500_000);
			return archiver_stats()->{failed} == $f;
		}),
	'and stops trying (failed_count stands still)');
is(scalar(grep { has_status($_, 'ready') && -f $node->data_dir . "/pg_wal/$_" } @full),
	3, 'the 3 segments stay in pg_wal, marked .ready');
is(scalar(grep { has_status($_, 'done') } @full), 0, 'none is marked .done');
ok($server->is_alive, 'pgbr-server still runs');

# nothing half-written: no file for the failed segments, not even a
# temporary one, and the space the partial files took is free again
foreach my $n (@full)
{
	is(join(' ', archive_files_of($n)), '', "the archive holds no file for $n");
}
is(join(' ', archive_temp_files()), '',
	'no temporary file remains in the archive after the failed pushes');
is(join(' ', archive_odd_files()), '',
	'every file in the archive is a complete "<wal>-<sha256>" file');
my (undef, $avail1) = fs_space($SMALL);
note "available: $avail0 bytes before the pushes, $avail1 after they failed";
cmp_ok($avail1, '>=', $avail0 - 64 * 1024,
	'the partly written files were removed: their space is free again');

my ($rc, $out, $err) = PgbrTest::run_pgbr("--config=$conf", '--stanza=demo',
	'archive-get', $full[0], "$getdir/$full[0]");
is($rc, 1, "archive-get of the failed segment $full[0] exits 1 (not found)");
unlike($err, qr/ERROR/, 'without an ERROR line');
ok(!-e "$getdir/$full[0]", 'and writes no file');
unlink "$getdir/$full[0]";

# and "pgbr info" does not count them in the archive's range
($rc, $out, $err) = PgbrTest::run_pgbr("--config=$conf", '--stanza=demo', 'info');
my ($wal_max) = $out =~ m{wal archive min/max \(\d+\): \S+/(\S+)};
ok(defined $wal_max && $wal_max lt $full[0],
	'"pgbr info" shows the archive ending before the failed segments ('
	  . ($wal_max // 'no range') . ')');

# what was archived before is still served intact, with the disk full
is(retrieve_all($sums), 3, 'the segments archived before are still retrievable, identical');

###########################################################################
# 3. Space is freed: archiving resumes by itself
###########################################################################

# No pg_reload_conf() here: only new WAL wakes the archiver, as on a live
# system, so pgbr has to carry on with the session that saw the failures.
unfill();
my $t0 = time();
ok(wait_archived($ARCHIVE_WAIT, 'by new WAL'),
	"archiving resumes once space is freed (within ${ARCHIVE_WAIT}s)");
note sprintf('caught up %.1f s after the space was freed', time() - $t0);
is(scalar(grep { has_status($_, 'done') } @full), 3, 'the 3 segments are .done');
is(retrieve_all($full_sums), 3, 'every segment of the full period is retrievable, identical');
is(retrieve_all($sums), 3, 'and so are the ones archived before');
foreach my $n (@full)
{
	is(scalar(archive_files_of($n)), 1, "exactly one file for $n in the archive");
}
is(join(' ', archive_temp_files()), '', 'no temporary file in the archive');

###########################################################################
# 4. A full backup runs out of space mid-copy
###########################################################################

# About 12 MB more that compression cannot shrink: the backup needs more
# space than the 2 MB left below, so it fails while copying files.
sql(q{INSERT INTO noise
        SELECT (SELECT decode(string_agg(md5(random()::text || g::text || s::text), ''), 'hex')
                  FROM generate_series(1, 65536) s)
          FROM generate_series(1, 12) g;
      CHECKPOINT;});
switch_segments(1);
ok(wait_archived($ARCHIVE_WAIT), 'the WAL of the new rows is archived');

my @labels0 = split /\n/, sql('SELECT label FROM pgbr_info() ORDER BY label');
fill(2 * 1024 * 1024);
$pg_off  = -s $node->logfile;
$srv_off = $server->log_size;
my ($bout, $berr) = ('', '');
my $bret = $node->psql('postgres', "SELECT pgbr_backup('full')",
	stdout => \$bout, stderr => \$berr, timeout => 180);
isnt($bret, 0, 'a full backup with 2 MB left on the repository fails');
like($berr, qr/ERROR:.*$ENOSPC_RE/, 'with an ERROR saying "No space left on device"')
  or diag "stdout: $bout\nstderr: $berr";
note "pgbr_backup(): $berr";
ok(defined $server->wait_for_log([ $ENOSPC_RE ], $srv_off, $LOG_WAIT),
	'the server log says "No space left on device"');

my @labels1 = split /\n/, sql('SELECT label FROM pgbr_info() ORDER BY label');
is_deeply(\@labels1, \@labels0, 'pgbr_info() lists no new backup');
($rc, $out, $err) = PgbrTest::run_pgbr("--config=$conf", '--stanza=demo', 'info');
is($rc, 0, 'pgbr info works with the file system full');
unlike($out, qr/full backup:|\d{8}-\d{6}F/, '"pgbr info" lists no backup');

sub backup_dirs
{
	opendir(my $dh, "$repo/demo/backup") or return ();
	my @d = grep { !/^\.\.?$/ } readdir $dh;
	closedir $dh;
	return @d;
}

# The label of the failed backup: from its ERROR, else from the server log
# after offset $off.
sub failed_label
{
	my ($error, $off) = @_;
	return $1 if $error =~ /\b(\d{8}-\d{6}F)\b/;
	return $server->log_content($off) =~ /backup (\S+) of stanza "demo" begins/ ? $1 : '?';
}

# What a failed backup leaves: never a manifest (the commit record); its
# directory is removed when its main session ends, once the sessions that
# joined it are gone (they are refused as soon as the token is removed).
sub check_failed_backup_removed
{
	my ($label) = @_;
	ok(!-e "$repo/demo/backup/$label/manifest",
		"the failed backup $label has no manifest");
	ok(wait_until($LOG_WAIT, sub { !-e "$repo/demo/backup/$label" }),
		"the directory of the failed backup $label is removed")
	  or diag 'left in backup/: ' . join(' ', backup_dirs());
	return;
}

my $label1 = failed_label($berr, $srv_off);
check_failed_backup_removed($label1);
ok($server->is_alive, 'pgbr-server still runs');

# not even room for the backup's first small files: the space the
# leftover of the first failed backup may still take is given back when
# this one begins
unfill();
fill(0);
$srv_off = $server->log_size;
($bout, $berr) = ('', '');
$bret = $node->psql('postgres', "SELECT pgbr_backup('full')",
	stdout => \$bout, stderr => \$berr, timeout => 180);
isnt($bret, 0, 'a full backup with no space left at all fails');
like($berr, qr/ERROR:.*$ENOSPC_RE/, 'with an ERROR saying "No space left on device"')
  or diag "stdout: $bout\nstderr: $berr";
note "pgbr_backup(): $berr";
is_deeply([ split /\n/, sql('SELECT label FROM pgbr_info() ORDER BY label') ],
	\@labels0, 'pgbr_info() lists no new backup');
my $label2 = failed_label($berr, $srv_off);
ok($label1 eq $label2 || !-e "$repo/demo/backup/$label1",
	"nothing is left of the first failed backup $label1 once another began");
check_failed_backup_removed($label2);

###########################################################################
# 5. Space freed: the next backup works, archiving is complete
###########################################################################

unfill();
my $label = sql("SELECT pgbr_backup('full')");
like($label, qr/^\d{8}-\d{6}F$/, "with space freed, a full backup succeeds ($label)");
my @labels2 = split /\n/, sql('SELECT label FROM pgbr_info() ORDER BY label');
is_deeply(\@labels2, [ @labels0, $label ], 'pgbr_info() lists it, and only it');
is(join(' ', backup_dirs()), $label,
	'the repository holds its directory and nothing of the failed backups');
ok(wait_archived($ARCHIVE_WAIT), 'no segment is left .ready');
is(join(' ', archive_temp_files()), '', 'no temporary file is left in the archive');
is(join(' ', archive_odd_files()), '', 'every file in the archive is complete');
is(retrieve_all({ %$sums, %$full_sums }), 6, 'all segments of the test are still identical');

$node->stop('fast');
is($server->stop, 0, 'pgbr-server stops cleanly');

done_testing();

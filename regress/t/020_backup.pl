# Copyright (c) pgbr contributors
#
# Backups started from SQL, against a real pgbr-server, as a user meets
# them: pgbr_backup() without shared_preload_libraries is refused; a first
# incr becomes a full (NOTICE); full, diff and incr after changes, each with
# the right prior in pgbr_info(); what the manifest holds (tablespace link
# and contents, empty pg_wal, no unlogged forks but _init, pg_control and
# backup_label); a second backup while one runs is refused; the session
# waiting in CALL pgbr_backup_run() holds no xmin (pg_stat_activity), the
# one waiting in SELECT does; a cancelled and a terminated caller stop the
# backup, nothing is listed and the next backup works; a page corrupted
# while the cluster was down is reported and recorded; pg_cron runs the
# xmin-free form every minute; the last backup restores (pgbr restore) to
# the same data; retention set in the server's [demo] section overrides
# its [global] one.
#
# To make a backup last long enough to be watched and cancelled, the test
# switches to compress-level 19 with one process on a table of random text.

use strict;
use warnings;

use File::Path qw(make_path);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(time usleep);

use PgbrTest;

my $WAIT = 60;    # seconds for anything asynchronous

###########################################################################
# Repository server, certificates, client configuration
###########################################################################

my $certdir  = PgbrTest::tmpdir('certs');
my $ca       = PgbrTest::make_ca($certdir, 'ca');
my $srv_cert = PgbrTest::make_cert($certdir, $ca, 'backup-srv', server => 1);
my $pg1      = PgbrTest::make_cert($certdir, $ca, 'pg1-srv');

my $server = PgbrTest::start_server(
	cert      => $srv_cert,
	ca        => $ca,
	auth      => ['pg1-srv=demo'],
	log_level => 'detail');
my $repo = $server->dir . '/repo';

my $confdir = PgbrTest::tmpdir('conf');
my $conf    = "$confdir/pg1.conf";

my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my $have_cron = -f "$sharedir/extension/pg_cron.control";

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1, extra => ['--data-checksums']);

# The host configuration; %extra overrides [global] options.
sub write_client_conf
{
	my (%extra) = @_;
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
			%extra
		},
		sections => {
			demo => {
				PgbrTest::pg1_options($node),
			}
		});
	return;
}
write_client_conf();

my $preload = $have_cron ? 'pg_cron,pgbr' : 'pgbr';
$node->append_conf(
	'postgresql.conf', qq(
archive_mode = on
archive_library = 'pgbr'
shared_preload_libraries = '$preload'
pgbr.config = '$conf'
pgbr.stanza = 'demo'
max_worker_processes = 16
wal_keep_size = '1GB'
autovacuum = off
log_min_messages = info
));
$node->append_conf('postgresql.conf', qq(
cron.database_name = 'postgres'
cron.host = '@{[ $node->host ]}'
)) if $have_cron;
$node->start;

###########################################################################
# Helpers
###########################################################################

sub sql
{
	my ($query) = @_;
	return $node->safe_psql('postgres', $query);
}

# ($ret, $stdout, $stderr) of a query that may fail
sub try_sql
{
	my ($query) = @_;
	my ($out, $err) = ('', '');
	my $ret = $node->psql('postgres', $query, stdout => \$out, stderr => \$err);
	return ($ret, $out, $err);
}

sub wait_until { return PgbrTest::wait_until(@_); }

sub labels
{
	return split /\n/, sql('SELECT label FROM pgbr_info() ORDER BY label');
}

# one backup of pgbr_info() as a hash
sub info
{
	my ($label) = @_;
	my $row = sql(
		"SELECT type, coalesce(prior, ''), database_size, backup_size, repository_size,
		        coalesce(error_pages, -1), wal_start, wal_stop,
		        timestamp_start <= timestamp_stop
		   FROM pgbr_info() WHERE label = '$label'");
	my @f = split /\|/, $row, -1;
	return {
		type        => $f[0],
		prior       => $f[1],
		db_size     => $f[2],
		backup_size => $f[3],
		repo_size   => $f[4],
		error_pages => $f[5],
		wal_start   => $f[6],
		wal_stop    => $f[7],
		times_ok    => $f[8],
	};
}

# manifest lines of a backup: { path => [fields] }
sub manifest
{
	my ($label) = @_;
	my %m;
	open my $fh, '<', "$repo/demo/backup/$label/manifest"
	  or die "manifest of $label: $!";
	my $files = 0;
	while (my $line = <$fh>)
	{
		chomp $line;
		if ($line eq '[files]') { $files = 1; next; }
		next unless $files;
		my @f = split /\t/, $line, -1;
		$m{ $f[1] } = \@f;
	}
	close $fh;
	return \%m;
}

sub progress_rows
{
	return sql('SELECT count(*) FROM pgbr_progress');
}

# starts psql running $query in the background; returns the harness and
# the stdout/stderr refs
sub start_psql
{
	my ($query) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c', $query ],
		'<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(600));
	return ($h, \$out, \$err);
}

sub caller_pid
{
	my ($pattern) = @_;
	return sql(
		"SELECT pid FROM pg_stat_activity WHERE query LIKE '$pattern%' AND pid <> pg_backend_pid()");
}

###########################################################################
# Without shared_preload_libraries: a clear error
###########################################################################

{
	my $plain = PostgreSQL::Test::Cluster->new('plain');
	$plain->init(allows_streaming => 1);
	$plain->append_conf('postgresql.conf', "pgbr.config = '$conf'\npgbr.stanza = 'demo'\n");
	$plain->start;
	$plain->safe_psql('postgres', 'CREATE EXTENSION pgbr');
	my ($out, $err) = ('', '');
	my $ret = $plain->psql('postgres', "SELECT pgbr_backup('full')",
		stdout => \$out, stderr => \$err);
	isnt($ret, 0, 'pgbr_backup() fails without pgbr in shared_preload_libraries');
	like($err, qr/requires pgbr in shared_preload_libraries/,
		'the error says shared_preload_libraries is needed');
	like($err, qr/HINT:.*shared_preload_libraries/, 'with a hint');
	is($plain->safe_psql('postgres', 'SELECT count(*) FROM pgbr_progress'),
		'0', 'pgbr_progress is empty there');
	$plain->stop;
}

###########################################################################
# Setup: extension, stanza, a tablespace, an unlogged table
###########################################################################

sql('CREATE EXTENSION pgbr');
like(sql('SELECT pgbr_stanza_create()'), qr/demo/, 'stanza created');
like(sql('SELECT pgbr_check()'), qr/successfully archived/, 'archiving works');

my $tsdir = PostgreSQL::Test::Utils::tempdir('ts');
sql("CREATE TABLESPACE ts LOCATION '$tsdir'");
sql('CREATE TABLE in_ts TABLESPACE ts AS SELECT g FROM generate_series(1, 10000) g');
sql('CREATE UNLOGGED TABLE unlogged AS SELECT g FROM generate_series(1, 10000) g');
sql('CREATE TABLE t AS SELECT g, md5(g::text) AS v FROM generate_series(1, 50000) g');
my $ts_oid   = sql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'");
my $ts_rel   = sql("SELECT pg_relation_filepath('in_ts')");
my $ul_rel   = sql("SELECT pg_relation_filepath('unlogged')");
is(progress_rows(), '0', 'pgbr_progress has no row while no backup runs');

###########################################################################
# Full (an incr without a full becomes one), diff, incr
###########################################################################

my $log_off = -s $node->logfile;
my ($ret, $out, $err) = try_sql("SELECT pgbr_backup('incr')");
is($ret, 0, 'first backup succeeds') or diag $err;
my $full = $out;
like($full, qr/^\d{8}-\d{6}F$/, "an incr without a prior becomes a full ($full)");
like($err, qr/NOTICE:  no prior backup exists, incr backup has been changed to full/,
	'a NOTICE says the incr became a full');

{
	my $log = slurp_file($node->logfile, $log_off);
	foreach my $re (
		qr/backup command begin/,
		qr/execute non-exclusive backup start: backup begins after the requested immediate checkpoint completes/,
		qr/backup start archive = [0-9A-F]{24}, lsn = [0-9A-F]+\/[0-9A-F]+/,
		qr/execute non-exclusive backup stop and wait for all WAL segments to archive/,
		qr/backup stop archive = [0-9A-F]{24}, lsn = /,
		qr/check archive for segment\(s\) [0-9A-F]{24}:[0-9A-F]{24}/,
		qr/new backup label = \Q$full\E/,
		qr/full backup size = [0-9.]+[KMG]?B, file total = \d+/,
		qr/backup command end: completed successfully/)
	{
		like($log, $re, "log: $re");
	}
}

my $i = info($full);
is($i->{type},  'full', 'pgbr_info: type full');
is($i->{prior}, '',     'pgbr_info: a full has no prior');
ok($i->{db_size} > 0 && $i->{db_size} == $i->{backup_size},
	'pgbr_info: a full stores all of its size');
ok($i->{repo_size} > 0, 'pgbr_info: repository size');
like($i->{wal_start}, qr/^[0-9A-F]{24}$/, 'pgbr_info: wal start');
is($i->{times_ok}, 't', 'pgbr_info: start before stop');

my $m = manifest($full);
ok($m->{"pg_tblspc/$ts_oid"} && $m->{"pg_tblspc/$ts_oid"}[0] eq 'l',
	'the tablespace link is in the manifest');
is($m->{"pg_tblspc/$ts_oid"}[12], $tsdir, 'with its target');
my ($ts_file) = grep { m{^pg_tblspc/$ts_oid/PG_\d+_\d+/\d+/} && $m->{$_}[0] eq 'f' } keys %$m;
ok(defined $ts_file, 'the files of the tablespace are in the manifest');
my ($ts_relnode) = $ts_rel =~ m{/(\d+)$};
ok((grep { m{^pg_tblspc/$ts_oid/PG_[^/]+/\d+/$ts_relnode$} } keys %$m),
	'the table in the tablespace is in the manifest');
ok($m->{'pg_wal'} && $m->{'pg_wal/archive_status'}, 'pg_wal and archive_status are there');
is(scalar(grep { m{^pg_wal/.+} && $_ ne 'pg_wal/archive_status' } keys %$m),
	0, 'pg_wal holds nothing else');
ok($m->{'global/pg_control'} && $m->{'backup_label'}, 'pg_control and backup_label are there');
ok(!$m->{'postmaster.pid'} && !$m->{'postmaster.opts'}, 'postmaster.pid/opts are not');
ok($m->{"${ul_rel}_init"}, 'the init fork of the unlogged table is there');
ok(!$m->{$ul_rel}, 'its main fork is not');
ok(!(grep { /pg_internal\.init/ || /pgsql_tmp/ } keys %$m),
	'no pg_internal.init, no pgsql_tmp');

# changes, then a diff and an incr
sql('UPDATE t SET v = v || \'x\' WHERE g % 100 = 0');
sql('CREATE TABLE t2 AS SELECT g FROM generate_series(1, 1000) g');
($ret, $out, $err) = try_sql("SELECT pgbr_backup('diff')");
is($ret, 0, 'diff backup succeeds') or diag $err;
my $diff = $out;
like($diff, qr/^\Q$full\E_\d{8}-\d{6}D$/, "diff label ($diff)");
$i = info($diff);
is($i->{type},  'diff', 'pgbr_info: type diff');
is($i->{prior}, $full,  'pgbr_info: the prior of the diff is the full');
ok($i->{backup_size} < $i->{db_size}, 'a diff stores less than the database size');
my $dm = manifest($diff);
ok((grep { $dm->{$_}[0] eq 'f' && $dm->{$_}[7] eq $full } keys %$dm),
	'unchanged files of the diff refer to the full');

sql('INSERT INTO t2 SELECT g FROM generate_series(1, 1000) g');
($ret, $out, $err) = try_sql("CALL pgbr_backup_run('incr')");
is($ret, 0, 'incr backup (CALL) succeeds') or diag $err;
my ($incr) = $out =~ /(\S+_\d{8}-\d{6}I)/;
ok(defined $incr, 'CALL returns the label') or diag $out;
$incr //= '';
$i = info($incr);
is($i->{type},  'incr', 'pgbr_info: type incr');
is($i->{prior}, $diff,  'pgbr_info: the prior of the incr is the diff');
is_deeply([ labels() ], [ $full, $diff, $incr ], 'pgbr_info lists the three backups');

###########################################################################
# A slow backup: refused second call, xmin, cancel, terminate
###########################################################################

sql(q{CREATE TABLE slow AS
      SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) AS v
        FROM generate_series(1, 400000) g});
sql('CHECKPOINT');
write_client_conf('compress-level' => 19, 'process-max' => 1);
my $nlabels = scalar(labels());

my ($h, $hout, $herr) = start_psql("CALL pgbr_backup_run('full')");
ok( wait_until($WAIT,
		sub { sql('SELECT phase FROM pgbr_progress') eq 'copying files' }),
	'the slow backup is copying files');
my $prog = sql('SELECT files_done, files_total, bytes_done, bytes_total, label IS NOT NULL, pid IS NOT NULL
                  FROM pgbr_progress');
like($prog, qr/^\d+\|\d+\|\d+\|\d+\|t\|t$/, "pgbr_progress shows it ($prog)");

($ret, $out, $err) = try_sql("SELECT pgbr_backup('incr')");
isnt($ret, 0, 'a second backup while one runs fails');
like($err, qr/a backup of stanza "demo" is already running/, 'it says a backup is running');

my $call_pid = caller_pid('CALL pgbr_backup_run');
like($call_pid, qr/^\d+$/, 'the CALL session is in pg_stat_activity');
my $xmin_null = 1;
foreach (1 .. 5)
{
	my $x = sql("SELECT coalesce(backend_xmin::text, 'NULL') FROM pg_stat_activity WHERE pid = $call_pid");
	$xmin_null = 0 if $x ne 'NULL';
	usleep(300_000);
}
ok($xmin_null, 'backend_xmin of the session waiting in CALL pgbr_backup_run() is NULL');
is(sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pgbr backup' AND backend_xmin IS NOT NULL"),
	'0', 'the backup worker holds no xmin while it copies');
my $slow_label = sql('SELECT label FROM pgbr_progress');

# cancel the waiting session
sql("SELECT pg_cancel_backend($call_pid)");
$h->finish;
like($$herr, qr/canceling statement due to user request/, 'the CALL was cancelled');
ok(wait_until(15, sub { progress_rows() eq '0' }), 'the backup stopped');
ok(wait_until(15, sub { !-d "$repo/demo/backup/$slow_label" }),
	"the server removed the incomplete backup $slow_label");
is(scalar(labels()), $nlabels, 'no new backup is listed');
ok($node->log_contains(qr/aborting backup due to backend exiting before pg_backup_stop was called/),
	'the worker left backup mode');

# the SELECT form keeps a snapshot while it waits; terminate it
($h, $hout, $herr) = start_psql("SELECT pgbr_backup('full')");
ok( wait_until($WAIT,
		sub { sql('SELECT phase FROM pgbr_progress') eq 'copying files' }),
	'a slow SELECT pgbr_backup() is copying files');
my $sel_pid = caller_pid('SELECT pgbr_backup');
isnt(sql("SELECT coalesce(backend_xmin::text, 'NULL') FROM pg_stat_activity WHERE pid = $sel_pid"),
	'NULL', 'the session waiting in SELECT holds an xmin (hence the procedure)');
$slow_label = sql('SELECT label FROM pgbr_progress');
sql("SELECT pg_terminate_backend($sel_pid)");
$h->finish;
ok(wait_until(15, sub { progress_rows() eq '0' }), 'terminating the caller stops the backup');
ok(wait_until(15, sub { !-d "$repo/demo/backup/$slow_label" }),
	'the server removed that backup too');
is(scalar(labels()), $nlabels, 'still no new backup is listed');

# the next backup works at once
write_client_conf();
sql('DROP TABLE slow');
($ret, $out, $err) = try_sql("SELECT pgbr_backup('incr')");
is($ret, 0, 'the next backup succeeds') or diag $err;
my $after = $out;
is(info($after)->{prior}, $incr, 'and builds on the last completed backup');

###########################################################################
# A page with a bad checksum
###########################################################################

sql('CREATE TABLE damaged AS SELECT g, md5(g::text) AS v FROM generate_series(1, 5000) g');
sql('VACUUM FREEZE damaged');
sql('CHECKPOINT');
my $bad_rel = sql("SELECT pg_relation_filepath('damaged')");
$node->stop;
{
	my $path = $node->data_dir . "/$bad_rel";
	open my $fh, '+<:raw', $path or die "open $path: $!";
	foreach my $blk (1, 3)
	{
		seek($fh, $blk * 8192 + 4000, 0) or die "seek: $!";
		print $fh 'CORRUPTED-BY-TEST' or die "write: $!";
	}
	close $fh or die "close: $!";
}
$node->start;
$log_off = -s $node->logfile;
($ret, $out, $err) = try_sql("SELECT pgbr_backup('incr')");
is($ret, 0, 'a backup with a damaged page completes') or diag $err;
my $damaged = $out;
like($err, qr/WARNING:  page checksum errors in 1 file/, 'the caller gets a WARNING');
like(slurp_file($node->logfile, $log_off),
	qr/checksum verification failed in file "\Q$bad_rel\E", block 1: calculated [0-9A-F]+ but expected/,
	'the log names the file and block 1');
like(slurp_file($node->logfile, $log_off),
	qr/checksum verification failed in file "\Q$bad_rel\E", block 3/, 'and block 3');
is(manifest($damaged)->{$bad_rel}[11], '1,3', 'the manifest records the blocks');
is(info($damaged)->{error_pages}, '1', 'pgbr_info shows one file with errors');
sql('DROP TABLE damaged');

###########################################################################
# delta=y: a file whose content changed but not its size and mtime
###########################################################################

{
	my $probe = 'pgbr_delta_probe';
	my $path  = $node->data_dir . "/$probe";
	my $old   = time() - 3600;
	my $put   = sub {
		my ($content) = @_;
		open my $fh, '>', $path or die "$path: $!";
		print $fh $content or die "$path: $!";
		close $fh or die "$path: $!";
		utime($old, $old, $path) or die "utime $path: $!";
	};
	my ($before, $after) = ('A' x 4096, 'B' x 4096);

	$put->($before);
	($ret, $out, $err) = try_sql("SELECT pgbr_backup('incr')");
	is($ret, 0, 'delta: an incr with the probe file') or diag $err;
	my $first = $out;
	is(manifest($first)->{$probe}[5], sha256_hex($before), 'delta: the probe is copied with its checksum');

	# same size, same (old) mtime, other bytes
	$put->($after);
	($ret, $out, $err) = try_sql("SELECT pgbr_backup('incr')");
	is($ret, 0, 'delta: an incr with delta=n') or diag $err;
	my $plain = manifest($out);
	is($plain->{$probe}[7], $first,
		'delta=n: same size and mtime make the changed file a reference (as in pgBackRest)');
	is($plain->{$probe}[5], sha256_hex($before), 'delta=n: ... to the old content');

	write_client_conf(delta => 'y');
	$log_off = -s $node->logfile;
	($ret, $out, $err) = try_sql("SELECT pgbr_backup('incr')");
	is($ret, 0, 'delta: an incr with delta=y') or diag $err;
	my $delta = manifest($out);
	like(slurp_file($node->logfile, $log_off), qr/backup command begin .* --delta=y/,
		'delta=y: the log shows the option');
	is($delta->{$probe}[7], '-', 'delta=y: the changed file is copied');
	is($delta->{$probe}[5], sha256_hex($after), 'delta=y: with the new content\'s checksum');
	isnt($delta->{PG_VERSION}[7], '-', 'delta=y: an unchanged file stays a reference');
	is($delta->{PG_VERSION}[5], $plain->{PG_VERSION}[5], 'delta=y: ... with its checksum');

	write_client_conf();
	unlink $path or die "$path: $!";
}

###########################################################################
# pg_cron runs the xmin-free form
###########################################################################

SKIP:
{
	skip 'pg_cron is not installed', 3 unless $have_cron;
	sql('CREATE EXTENSION pg_cron');
	my $before = scalar(labels());
	sql(q{SELECT cron.schedule('pgbr-incr', '* * * * *', $$CALL pgbr_backup_run('incr')$$)});
	ok(wait_until(75, sub { scalar(labels()) > $before }),
		'pg_cron ran an incr backup within 75 s');
	sql(q{SELECT cron.unschedule('pgbr-incr')});
	ok( wait_until(30,
			sub { sql(q{SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded'}) > 0 }),
		'the cron job succeeded')
	  or diag sql('SELECT status, return_message FROM cron.job_run_details');
	my @l = labels();
	is(info($l[-1])->{type}, 'incr', 'the cron backup is an incr');
	# a run started just before unschedule may still be going
	wait_until($WAIT, sub { progress_rows() eq '0' });
}

###########################################################################
# The last backup restores to the same data
###########################################################################

SKIP:
{
	my ($hrc, $help) = PgbrTest::run_pgbr('help');
	skip 'pgbr has no restore command', 3 unless $help =~ /\brestore\b/;

	# no tablespace in the restored backup: its link points into this cluster
	sql('DROP TABLE in_ts');
	sql('DROP TABLESPACE ts');
	sql('UPDATE t SET v = md5(v) WHERE g % 7 = 0');
	my $expect = sql('SELECT count(*), md5(string_agg(v, \',\' ORDER BY g)) FROM t');
	($ret, $out, $err) = try_sql("SELECT pgbr_backup('incr')");
	is($ret, 0, 'a last incr succeeds') or diag $err;
	my $last = $out;

	my $restored = PostgreSQL::Test::Cluster->new('restored');
	my $dest     = $node->backup_dir . '/pgbr';
	make_path($node->backup_dir);
	my ($rc, $rout, $rerr) = PgbrTest::run_pgbr(
		{ timeout => 300 },
		"--config=$conf", '--stanza=demo', "--pg1-path=$dest", "--set=$last", 'restore');
	is($rc, 0, "pgbr restore of $last") or diag $rerr;
	$restored->init_from_backup($node, 'pgbr');
	$restored->append_conf('postgresql.conf', qq(
archive_mode = off
shared_preload_libraries = ''
));
	$restored->start;
	ok( $restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
		  && $restored->safe_psql('postgres',
			'SELECT count(*), md5(string_agg(v, \',\' ORDER BY g)) FROM t') eq $expect,
		'the restored cluster has the same data');
	$restored->stop;
}

###########################################################################
# Retention from the server's [demo] section, which overrides its [global]
###########################################################################

{
	($ret, $out, $err) = try_sql("SELECT pgbr_backup('full')");
	is($ret, 0, 'one more full backup') or diag $err;
	my $newest = $out;
	my @fulls = split /\n/,
	  sql(q{SELECT label FROM pgbr_info() WHERE type = 'full' ORDER BY label});
	cmp_ok(scalar(@fulls), '>=', 2, 'at least two full backups before the expire');
	is($fulls[-1], $newest, 'the new full is the newest');

	my $off = $server->log_size;
	$server->rewrite_conf({ 'repo1-retention-full' => 99 },
		{ demo => { 'repo1-retention-full' => 1 } });
	$server->reload;
	ok(defined $server->wait_for_log(qr/configuration reloaded/, $off),
		'pgbr-server reloads its configuration');
	my ($rc, $eout, $eerr) =
	  PgbrTest::run_pgbr("--config=$conf", '--stanza=demo', 'expire');
	is($rc, 0, 'pgbr expire') or diag $eerr;
	like($eout, qr/expire full backup \Q$fulls[0]\E/,
		'expire reports the oldest full as expired');
	is(join(',', labels()), $newest,
		'repo1-retention-full=1 of [demo] leaves the newest full alone ([global] says 99)');
}

is(progress_rows(), '0', 'no backup runs at the end');
$node->stop;
is($server->stop, 0, 'pgbr-server stops cleanly');

done_testing();

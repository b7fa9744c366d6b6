# Copyright (c) pgbr contributors
#
# Backups taken from the standby, as the seed's last section does them
# (backup-standby=y), but started on the primary with SELECT pgbr_backup():
#
#   - primary pg1 archiving through pgbr, standby pg2 restored with
#     "pgbr restore --type=standby" and streaming, each host with its own
#     certificate (pg1-srv, pg2-srv) and pgbr configuration;
#   - a full backup with backup-standby=y while the primary takes writes
#     (inserts and transfers between accounts in a loop): the log has
#     pgBackRest's lines (backup start with its LSN, wait for replay on the
#     standby, replay reached, backup stop, archive check); the relation
#     files were read on the standby and the other files on the primary
#     (marker files on each side, the CN of the sessions); pgbr_info() says
#     backup-from standby; restored (--type=immediate) it is a consistent
#     cluster (accounts balance, amcheck) with every row committed before
#     the backup started;
#   - the standby stopped: backup-standby=y fails saying so, prefer backs up
#     from the primary with a WARNING;
#   - replay paused on the standby: the backup fails after
#     backup-standby-lag, and the next one works;
#   - cancelling the backup on the primary stops the copy on the standby
#     (whose workers hold no xmin), the server removes the backup;
#   - "pgbr backup" (CALL pgbr_backup_run) from the standby: its session
#     holds no xmin while it waits;
#   - an incr from the standby on an incr from the standby, under load:
#     unchanged files are references, the restore is consistent;
#   - a backup started on the standby itself (BACKUP FROM: standby): waits
#     for the primary to archive its last segment, restores consistently;
#   - pg_cron on the primary runs the backup from the standby (if pg_cron
#     is installed).

use strict;
use warnings;

use File::Path qw(make_path);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use PgbrTest;

my $WAIT = 120;    # seconds for anything asynchronous

###########################################################################
# Repository server, certificates, configurations
###########################################################################

my $certdir  = PgbrTest::tmpdir('certs');
my $ca       = PgbrTest::make_ca($certdir, 'ca');
my $srv_cert = PgbrTest::make_cert($certdir, $ca, 'backup-srv', server => 1);
my $pg1_cert = PgbrTest::make_cert($certdir, $ca, 'pg1-srv');
my $pg2_cert = PgbrTest::make_cert($certdir, $ca, 'pg2-srv');

my $server = PgbrTest::start_server(
	cert      => $srv_cert,
	ca        => $ca,
	auth      => [ 'pg1-srv=demo', 'pg2-srv=demo' ],
	log_level => 'detail',
	global    => { 'repo1-retention-full' => 20 });
my $repo = $server->global->{'repo1-path'};

my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my $have_cron    = -f "$sharedir/extension/pg_cron.control";
my $have_amcheck = -f "$sharedir/extension/amcheck.control";

my $confdir = PgbrTest::tmpdir('conf');
my $conf1   = "$confdir/pg1.conf";
my $conf2   = "$confdir/pg2.conf";

my $primary = PostgreSQL::Test::Cluster->new('primary');
# the standby's port and socket directory are known before it exists
my $standby = PostgreSQL::Test::Cluster->new('standby');
$primary->init(allows_streaming => 1, extra => ['--data-checksums']);

# pg1-srv: the primary's pgbr configuration; %extra overrides [global]
sub write_pg1_conf
{
	my (%extra) = @_;
	PgbrTest::client_conf(
		$conf1,
		port  => $server->port,
		cert  => $pg1_cert,
		ca    => $ca,
		extra => {
			'process-max'     => 2,
			'start-fast'      => 'y',
			'archive-timeout' => 60,
			'compress-level'  => 1,
			%extra
		},
		sections => {
			demo => {
				PgbrTest::pg1_options($primary),
				'pg2-socket-path' => $standby->host,
				'pg2-port'        => $standby->port,
			}
		});
	return;
}
write_pg1_conf('backup-standby' => 'n');

# pg2-srv: the standby's own, with its own certificate
sub write_pg2_conf
{
	my (%extra) = @_;
	PgbrTest::client_conf(
		$conf2,
		port  => $server->port,
		cert  => $pg2_cert,
		ca    => $ca,
		extra => {
			'process-max'     => 2,
			'start-fast'      => 'y',
			'archive-timeout' => 90,
			'compress-level'  => 1,
			%extra
		},
		sections => {
			demo => {
				PgbrTest::pg1_options($standby),
			}
		});
	return;
}
write_pg2_conf();

my $preload = $have_cron ? 'pg_cron,pgbr' : 'pgbr';
$primary->append_conf(
	'postgresql.conf', qq(
shared_preload_libraries = '$preload'
archive_mode = on
archive_library = 'pgbr'
pgbr.config = '$conf1'
pgbr.stanza = 'demo'
max_worker_processes = 16
wal_keep_size = '1GB'
log_min_messages = info
));
$primary->append_conf('postgresql.conf', qq(
cron.database_name = 'postgres'
cron.host = '@{[ $primary->host ]}'
)) if $have_cron;
$primary->start;

###########################################################################
# Helpers
###########################################################################

sub sql { my ($node, $q) = @_; return $node->safe_psql('postgres', $q); }

# ($ret, $stdout, $stderr) of a query that may fail
sub try_sql
{
	my ($node, $query) = @_;
	my ($out, $err) = ('', '');
	my $ret = $node->psql('postgres', $query, stdout => \$out, stderr => \$err);
	return ($ret, $out, $err);
}

sub wait_until { return PgbrTest::wait_until(@_); }

sub pgbr
{
	my ($conf, @args) = @_;
	return PgbrTest::run_pgbr({ timeout => 300 }, "--config=$conf", '--stanza=demo', @args);
}

sub labels { return split /\n/, sql($primary, 'SELECT label FROM pgbr_info() ORDER BY label'); }

sub backup_from
{
	my ($label) = @_;
	return sql($primary, "SELECT backup_from FROM pgbr_info() WHERE label = '$label'");
}

sub manifest
{
	my ($label) = @_;
	return slurp_file("$repo/demo/backup/$label/manifest");
}

# paths of the manifest's [files] section
sub manifest_paths
{
	my ($label) = @_;
	my %paths;
	my $files = 0;
	foreach my $line (split /\n/, manifest($label))
	{
		if ($line eq '[files]') { $files = 1; next; }
		next unless $files;
		my @f = split /\t/, $line;
		$paths{ $f[1] } = $f[0];
	}
	return \%paths;
}

# A new node restored from $label (--type=immediate: recovery ends where
# the backup is consistent), started and promoted.
sub restore_and_start
{
	my ($name, $label) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	my ($rc, $out, $err) = pgbr($conf1, '--pg1-path=' . $node->data_dir, "--set=$label",
		'--type=immediate', '--target-action=promote', 'restore');
	is($rc, 0, "$name: restore of $label succeeds") or diag($err);
	my $pgconf = slurp_file($node->data_dir . '/postgresql.conf');
	$node->append_conf(
		'postgresql.conf', sprintf(
			"port = %d\nunix_socket_directories = '%s'\narchive_mode = off\nhot_standby = on\n",
			$node->port, $node->host));
	$node->start;
	ok($node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
		"$name: recovery finished");
	ok($node->log_contains(qr/consistent recovery state reached/),
		"$name: recovery reached a consistent state");
	return ($node, $pgconf);
}

# What a consistent copy of the load must show: the transfers balance, the
# indexes match their tables, and every row committed before $before
# (max(id) of load then, $n_before rows) is there.
sub check_consistent
{
	my ($node, $before, $n_before) = @_;
	is(sql($node, 'SELECT sum(bal) FROM acct'), '0', $node->name . ': the accounts balance');
	is(sql($node, 'SELECT count(*) FROM acct'), '20000', $node->name . ': every account is there');
	is(sql($node, "SELECT count(*) FROM load WHERE id <= $before"), $n_before,
		$node->name . ": the $n_before rows committed before the backup started are there");
	is(sql($node, 'SELECT count(*) FROM small'), '1000', $node->name . ': the static table is there');
  SKIP:
	{
		skip 'amcheck is not installed', 1 unless $have_amcheck;
		sql($node, 'CREATE EXTENSION amcheck');
		is( sql($node,
				q{SELECT count(*) FROM (SELECT bt_index_check(c.oid, true) FROM pg_class c
				  WHERE c.relname IN ('acct_pkey', 'load_pkey', 'small_pkey')) x}),
			'3', $node->name . ': amcheck finds the indexes consistent with their tables');
	}
	return;
}

# The load: one session that inserts into load and moves 1 between two
# accounts, committing each iteration, until load_ctl.stop.
my ($load_out, $load_err) = ('', '');
my $load;

sub start_load
{
	sql($primary, 'UPDATE load_ctl SET stop = false');
	($load_out, $load_err) = ('', '');
	$load = IPC::Run::start(
		[ 'psql', '-X', '-h', $primary->host, '-p', $primary->port, '-d', 'postgres',
			'-c', 'CALL run_load()' ],
		'>', \$load_out, '2>', \$load_err);
	# it runs: rows appear
	my $n = sql($primary, 'SELECT count(*) FROM load');
	ok(wait_until($WAIT, sub { sql($primary, 'SELECT count(*) FROM load') > $n + 50 }),
		'the load runs on the primary');
	return;
}

sub stop_load
{
	sql($primary, 'UPDATE load_ctl SET stop = true');
	$load->finish;
	is($load->result(0), 0, 'the load ended cleanly') or diag($load_err);
	return;
}

# (max id, count of rows up to it) of load: what is committed now
sub committed_now
{
	my $max = sql($primary, 'SELECT coalesce(max(id), 0) FROM load');
	return ($max, sql($primary, "SELECT count(*) FROM load WHERE id <= $max"));
}

###########################################################################
# Stanza, data, a first backup (of the primary) to build the standby from
###########################################################################

sql($primary, 'CREATE EXTENSION pgbr');
sql($primary, 'SELECT pgbr_stanza_create()');
my $dboid = sql($primary, "SELECT oid FROM pg_database WHERE datname = 'postgres'");

sql($primary, q{
CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL, pad text);
INSERT INTO acct SELECT g, 0, repeat(md5(g::text), 6) FROM generate_series(1, 20000) g;
CREATE TABLE small (id int PRIMARY KEY, note text);
INSERT INTO small SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
CREATE TABLE big (id int, payload text);
INSERT INTO big SELECT g, md5(g::text) || md5((g + 1)::text) FROM generate_series(1, 200000) g;
CREATE TABLE load (id bigserial PRIMARY KEY, v text, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE load_ctl (stop boolean NOT NULL);
INSERT INTO load_ctl VALUES (false);
CREATE PROCEDURE run_load() LANGUAGE plpgsql AS $$
DECLARE
	a int;
	b int;
BEGIN
	LOOP
		EXIT WHEN (SELECT stop FROM load_ctl);
		INSERT INTO load (v) VALUES (md5(random()::text));
		a := 1 + floor(random() * 20000)::int;
		b := 1 + floor(random() * 20000)::int;
		UPDATE acct SET bal = bal - 1 WHERE id = a;
		UPDATE acct SET bal = bal + 1 WHERE id = b;
		COMMIT;
		PERFORM pg_sleep(0.002);
	END LOOP;
END $$;
CHECKPOINT;
});

my $first = sql($primary, "SELECT pgbr_backup('full')");
like($first, qr/^\d{8}-\d{6}F$/, "first full backup $first (from the primary)");
is(backup_from($first), 'primary', 'backup-standby=n: backup from the primary');
sql($primary, 'SELECT pgbr_check()');

# the standby, as the seed builds it
{
	my $conninfo = sprintf('host=%s port=%d application_name=standby', $primary->host,
		$primary->port);
	my ($rc, $out, $err) = pgbr($conf2, '--type=standby',
		"--recovery-option=primary_conninfo=$conninfo", 'restore');
	is($rc, 0, 'standby restored with pgbr restore --type=standby') or diag($err);
	# one machine plays two hosts: the standby's own port, socket, pgbr config
	$standby->append_conf(
		'postgresql.conf', sprintf(
			"port = %d\nunix_socket_directories = '%s'\nhot_standby = on\npgbr.config = '%s'\n",
			$standby->port, $standby->host, $conf2));
	$standby->start;
	$primary->wait_for_catchup('standby');
	is(sql($standby, 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
	is(sql($standby, 'SELECT status FROM pg_stat_wal_receiver'), 'streaming', 'the standby streams');
}

###########################################################################
# A full backup from the standby while the primary takes writes
###########################################################################

write_pg1_conf('backup-standby' => 'y');

# marker files: the relation directories are read on the standby, the top
# of the data directory on the primary
foreach my $m ([ $primary, 'primary' ], [ $standby, 'standby' ])
{
	my ($node, $side) = @$m;
	foreach my $f ("base/$dboid/pgbr_probe_$side", "pgbr_probe_top_$side")
	{
		open(my $fh, '>', $node->data_dir . "/$f") or die "create $f: $!";
		print $fh "written on the $side\n";
		close $fh;
	}
}

start_load();
my ($before, $n_before) = committed_now();
my $log1 = -s $primary->logfile;
my $log2 = -s $standby->logfile;
my $slog = -s $server->logfile;
my ($ret, $label, $err) = try_sql($primary, "SELECT pgbr_backup('full')");
is($ret, 0, 'backup-standby=y: SELECT pgbr_backup() on the primary succeeds') or diag($err);
like($label, qr/^\d{8}-\d{6}F$/, "backup $label from the standby");
sql($primary, "INSERT INTO load (v) VALUES ('after the backup')");
stop_load();
is(backup_from($label), 'standby', 'pgbr_info(): backup_from = standby');

# the seed's log lines, in order, on the primary
{
	my $log = substr(slurp_file($primary->logfile), $log1);
	my ($lsn) = $log =~ /backup start archive = [0-9A-F]{24}, lsn = ([0-9A-F]+\/[0-9A-F]+)/;
	ok(defined $lsn, 'log: backup start archive and lsn') or diag($log);
	$lsn //= 'none';
	like($log,
		qr/execute\ non-exclusive\ backup\ start:\ backup\ begins\ after\ the\ requested\ immediate\ checkpoint\ completes.*
		   backup\ start\ archive\ =\ [0-9A-F]{24},\ lsn\ =\ \Q$lsn\E.*
		   wait\ for\ replay\ on\ the\ standby\ to\ reach\ \Q$lsn\E.*
		   replay\ on\ the\ standby\ reached\ \Q$lsn\E.*
		   copy\ relation\ files\ from\ the\ standby,\ other\ files\ from\ the\ primary.*
		   standby\ sent\ \d+\ files.*
		   execute\ non-exclusive\ backup\ stop\ and\ wait\ for\ all\ WAL\ segments\ to\ archive.*
		   backup\ stop\ archive\ =\ [0-9A-F]{24},\ lsn\ =\ [0-9A-F]+\/[0-9A-F]+.*
		   check\ archive\ for\ segment\(s\)\ [0-9A-F]{24}:[0-9A-F]{24}.*
		   new\ backup\ label\ =\ \Q$label\E.*
		   full\ backup\ size\ =\ [\d.]+[KMG]?B,\ file\ total\ =\ \d+.*
		   backup\ command\ end:\ completed\ successfully/xs,
		'log on the primary: start, wait for replay, replay reached, copy, stop, archive check');
	like($log, qr/--backup-standby=y/, 'log: backup command begin names backup-standby');

	my $slog_text = substr(slurp_file($server->logfile), $slog);
	like($slog_text, qr/CN "pg2-srv" opened a backup session for stanza "demo"/,
		'the standby joined the backup with its own certificate');
	like(substr(slurp_file($standby->logfile), $log2),
		qr/backup \Q$label\E: copy of the standby's files begins.*backup \Q$label\E: the standby sent (\d+) files/s,
		"the standby's worker copied its files");
}

# where each file was read
{
	my $paths = manifest_paths($label);
	is($paths->{"base/$dboid/pgbr_probe_standby"}, 'f', 'a file of base/ is read on the standby');
	ok(!exists $paths->{"base/$dboid/pgbr_probe_primary"}, '... not on the primary');
	is($paths->{pgbr_probe_top_primary}, 'f', 'a file at the top is read on the primary');
	ok(!exists $paths->{pgbr_probe_top_standby}, '... not on the standby');
	ok(!exists $paths->{'standby.signal'}, 'no standby.signal in the backup');
	is($paths->{'global/pg_control'}, 'f', 'pg_control is in the backup');
	is($paths->{'backup_label'}, 'f', 'backup_label is in the backup');
	ok(scalar(grep { m{^base/$dboid/\d+$} } keys %$paths) > 10, 'relation files are in the backup');
	like(manifest($label), qr/^backup-from=standby$/m, 'manifest: backup-from=standby');
}
foreach my $m ([ $primary, 'primary' ], [ $standby, 'standby' ])
{
	my ($node, $side) = @$m;
	unlink($node->data_dir . "/base/$dboid/pgbr_probe_$side", $node->data_dir . "/pgbr_probe_top_$side");
}

sql($primary, 'SELECT pgbr_check()');
{
	my ($node, $pgconf) = restore_and_start('restored_standby', $label);
	unlike($pgconf, qr/\Q$conf2\E/, "postgresql.conf is the primary's, not the standby's");
	check_consistent($node, $before, $n_before);
	$node->stop;
}

###########################################################################
# No standby: y fails saying so, prefer falls back to the primary
###########################################################################

$standby->stop;
my $prefer_label = '';
{
	my @labels = labels();
	my ($ret, $out, $err) = try_sql($primary, "SELECT pgbr_backup('full')");
	isnt($ret, 0, 'standby down, backup-standby=y: the backup fails');
	like($err, qr/ERROR:  unable to back up from the standby: could not connect to the standby \(pg2: host=\S+ port=\d+\)/,
		'... saying the standby cannot be reached');
	like($err, qr/HINT:  .*backup-standby=prefer/, '... and hinting at prefer');
	is_deeply([ labels() ], \@labels, '... and lists no new backup');

	write_pg1_conf('backup-standby' => 'prefer');
	($ret, $out, $err) = try_sql($primary, "SELECT pgbr_backup('full')");
	is($ret, 0, 'standby down, backup-standby=prefer: the backup succeeds') or diag($err);
	like($err, qr/WARNING:  unable to back up from the standby, backing up from the primary instead: could not connect/,
		'... with a WARNING saying it backs up from the primary');
	is(backup_from($out), 'primary', '... and it is a backup from the primary');
	$prefer_label = $out;
	my $paths = manifest_paths($out);
	ok(scalar(grep { m{^base/$dboid/\d+$} } keys %$paths) > 10, '... with the relation files');
}
$standby->start;
$primary->wait_for_catchup('standby');

###########################################################################
# Replay on the standby paused: the backup fails after backup-standby-lag
###########################################################################

{
	write_pg1_conf('backup-standby' => 'y', 'backup-standby-lag' => 3);
	sql($standby, 'SELECT pg_wal_replay_pause()');
	my @labels = labels();
	my $t0 = time();
	my ($ret, $out, $err) = try_sql($primary, "SELECT pgbr_backup('full')");
	isnt($ret, 0, 'replay paused: the backup fails');
	like($err, qr/ERROR:  unable to back up from the standby: replay on the standby \(pg2: [^)]*\) did not reach [0-9A-F]+\/[0-9A-F]+ within backup-standby-lag = 3 s: it is at [0-9A-F]+\/[0-9A-F]+/,
		'... saying replay did not reach the start within backup-standby-lag');
	cmp_ok(time() - $t0, '<', 60, '... soon after the lag bound');
	is_deeply([ labels() ], \@labels, '... and lists no new backup');
	sql($standby, 'SELECT pg_wal_replay_resume()');
	write_pg1_conf('backup-standby' => 'y');
}

###########################################################################
# Cancelling the backup on the primary stops the copy on the standby
###########################################################################

{
	# a copy slow enough to be watched: compress-level 19, one process
	sql($primary, q{CREATE TABLE slow AS
	  SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text) AS v
	    FROM generate_series(1, 400000) g});
	$primary->wait_for_catchup('standby');
	write_pg2_conf('compress-level' => 19, 'process-max' => 1);
	my @labels = labels();
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-h', $primary->host, '-p', $primary->port, '-d', 'postgres',
			'-c', "CALL pgbr_backup_run('full')" ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(300));
	ok( wait_until($WAIT, sub {
				sql($standby, "SELECT count(*) FROM pgbr_progress WHERE phase = 'copying files' AND bytes_done > 0")
				  eq '1';
			}),
		"the standby's worker is copying files (pgbr_progress on the standby)");
	is(sql($primary, 'SELECT phase FROM pgbr_progress'), 'copying files',
		'... while the primary waits for it');
	my $slow_label = sql($primary, 'SELECT label FROM pgbr_progress');
	is(sql($standby, 'SELECT label FROM pgbr_progress'), $slow_label, '... for the same backup');
	is( sql($standby,
			"SELECT count(*) FROM pg_stat_activity WHERE (backend_type = 'pgbr backup' OR application_name = 'pgbr backup') AND backend_xmin IS NOT NULL"),
		'0', 'on the standby neither the copy nor its caller holds an xmin (hot_standby_feedback)');
	my $pid = sql($primary,
		"SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL pgbr_backup_run%' AND backend_type = 'client backend'");
	sql($primary, "SELECT pg_cancel_backend($pid)");
	$h->finish;
	like($err, qr/canceling statement due to user request/, 'the CALL on the primary was cancelled');
	ok(wait_until(30, sub { sql($standby, 'SELECT count(*) FROM pgbr_progress') eq '0' }),
		'the copy on the standby stopped');
	ok(wait_until(30, sub { sql($primary, 'SELECT count(*) FROM pgbr_progress') eq '0' }),
		'the backup on the primary stopped');
	ok(wait_until(30, sub { !-d "$repo/demo/backup/$slow_label" }),
		"the server removed the incomplete backup $slow_label");
	is_deeply([ labels() ], \@labels, 'no new backup is listed');
	write_pg2_conf();
	sql($primary, 'DROP TABLE slow');
}

###########################################################################
# pgbr backup (CALL pgbr_backup_run): no xmin held while it waits
###########################################################################

{
	# replay paused: the backup waits for the standby, long enough to look
	sql($standby, 'SELECT pg_wal_replay_pause()');
	my ($out, $err) = ('', '');
	my $tool = IPC::Run::start(
		[ PgbrTest::pgbr_bin(), "--config=$conf1", '--stanza=demo', '--type=incr', 'backup' ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(300));
	ok( wait_until($WAIT, sub {
				sql($primary,
					"SELECT count(*) FROM pgbr_progress WHERE phase = 'waiting for replay on the standby'")
				  eq '1';
			}),
		'pgbr backup waits for replay on the standby (pgbr_progress)');
	is( sql($primary,
			"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbr' AND backend_xmin IS NULL AND query LIKE 'CALL pgbr_backup_run%'"),
		'1', 'the session of pgbr backup (CALL pgbr_backup_run) holds no xmin');
	sql($standby, 'SELECT pg_wal_replay_resume()');
	$tool->finish;
	is($tool->result(0), 0, 'pgbr backup succeeds') or diag($err);
	my ($incr) = $out =~ /new backup label = (\S+)/;
	ok(defined $incr && $incr =~ /^\Q$prefer_label\E_\d{8}-\d{6}I$/,
		"pgbr backup took incr $incr on the last backup $prefer_label")
	  or diag($out);
	is(backup_from($incr // ''), 'standby', '... from the standby');
}

###########################################################################
# An incr from the standby on an incr from the standby, under load: the
# standby's worker reads the prior manifest (MANIFEST_GET on its joined
# session) and sends unchanged files as references
###########################################################################

{
	start_load();
	my ($before3, $n_before3) = committed_now();
	my $off = -s $standby->logfile;
	my $incr2 = sql($primary, "SELECT pgbr_backup('incr')");
	stop_load();
	like($incr2, qr/^\Q$prefer_label\E_\d{8}-\d{6}I$/, "incr $incr2 from the standby");
	is(backup_from($incr2), 'standby', '... from the standby');
	my ($unchanged) = substr(slurp_file($standby->logfile), $off) =~
	  /backup \Q$incr2\E: the standby sent \d+ files, \S+ \((\d+) unchanged\)/;
	cmp_ok($unchanged // 0, '>', 100, "the standby referenced unchanged files of the prior incr");
	# (a file the standby has not written since its restore keeps the
	# primary's mtime, so the reference may go back to the prefer full)
	like(manifest($incr2), qr/^f\tbase\/$dboid\/\d+\t(?:[^\t]*\t){5}\Q$prefer_label\E(?:_\d{8}-\d{6}I)?\t/m,
		'manifest: relation files refer to earlier backups');

	sql($primary, 'SELECT pgbr_check()');
	my ($node) = restore_and_start('restored_incr', $incr2);
	check_consistent($node, $before3, $n_before3);
	$node->stop;
}

###########################################################################
# A backup started on the standby itself
###########################################################################

{
	start_load();
	$primary->wait_for_catchup('standby');
	my ($before2, $n_before2) = committed_now();
	$primary->wait_for_catchup('standby');
	my $off = -s $standby->logfile;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-At', '-h', $standby->host, '-p', $standby->port, '-d', 'postgres',
			'-c', "SELECT pgbr_backup('full')" ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(300));
	# its last segment is archived by the primary once complete: help it
	my $deadline = time() + 200;
	while (time() < $deadline)
	{
		$h->pump_nb;
		last unless $h->pumpable;
		sleep 2;
		sql($primary, 'SELECT pg_switch_wal()');
	}
	stop_load();
	$h->finish;
	is($h->result(0), 0, 'SELECT pgbr_backup() on the standby succeeds') or diag($err);
	chomp $out;
	like($out, qr/^\d{8}-\d{6}F$/, "backup $out taken on the standby");
	is(backup_from($out), 'standby', '... pgbr_info(): backup_from = standby');
	my $log = substr(slurp_file($standby->logfile), $off);
	like($log,
		qr/backup start archive = [0-9A-F]{24}, lsn = [0-9A-F]+\/[0-9A-F]+.*backup stop archive = [0-9A-F]{24}.*check archive for segment\(s\).*new backup label = \Q$out\E/s,
		"log on the standby: start, stop, archive check");
	unlike($log, qr/wait for replay on the standby/, '... no wait for a standby');
	like(manifest($out), qr/^backup-from=standby$/m, 'manifest: backup-from=standby');

	sql($primary, 'SELECT pgbr_check()');
	my ($node) = restore_and_start('restored_on_standby', $out);
	check_consistent($node, $before2, $n_before2);
	$node->stop;
}

###########################################################################
# pg_cron on the primary schedules the backup from the standby
###########################################################################

SKIP:
{
	skip 'pg_cron is not installed', 2 unless $have_cron;
	sql($primary, 'CREATE EXTENSION pg_cron');
	my @labels = labels();
	sql($primary,
		q{SELECT cron.schedule('standby-backup', '* * * * *', $$CALL pgbr_backup_run('full')$$)});
	my $new;
	ok( wait_until(
			150,
			sub {
				my %old = map { $_ => 1 } @labels;
				($new) = grep { !$old{$_} } labels();
				return defined $new;
			}),
		'pg_cron ran CALL pgbr_backup_run() on the primary');
	sql($primary, q{SELECT cron.unschedule('standby-backup')});
	is(backup_from($new // ''), 'standby', '... and the backup was read on the standby');
}

$standby->stop;
$primary->stop;
is($server->stop, 0, 'pgbr-server stopped cleanly');

done_testing();

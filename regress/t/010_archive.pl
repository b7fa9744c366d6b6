# Copyright (c) pgbr contributors
#
# WAL archiving through archive_library = 'pgbr' to a real pgbr-server, as
# a user meets it: stanza-create from SQL, pgbr_check(), a burst of
# segments that must all come back byte-identical with "pgbr archive-get",
# a repository server that crashes (kill -9) mid-burst, one that is down
# when archiving starts, one that accepts TCP and never answers (shutdown
# must stay fast), WAL of another cluster refused, the same segment pushed
# twice (same content: fine; different content: refused), and a client
# certificate that is not authorised for the stanza.
#
# A note on waiting: after three failed attempts PostgreSQL's archiver
# sleeps until new WAL is ready, a signal arrives or 60 s pass
# (PGARCH_AUTOWAKE_INTERVAL, PostgreSQL's behaviour, not pgbr's).  Where the
# test waits for the archiver to catch up after the repository came back, it
# wakes the archiver every few seconds with pg_reload_conf() (SIGHUP), as
# any new WAL would on a live system, so that the run stays short.

use strict;
use warnings;

use Digest::SHA;
use IO::Socket::INET;
use IPC::Run;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use PgbrTest;

# Bounds, in seconds.
my $ARCHIVE_WAIT  = 90;    # archiver catches up
my $LOG_WAIT      = 15;    # a log line appears
my $STOP_MAX      = 30;    # pg_ctl stop -m fast with a silent repository
my $BURST         = 50;    # segments of the first burst
my $CRASH_BURST   = 30;    # segments of the burst during which the server dies

# pg_ctl's own wait (default 60 s): a stop slower than $STOP_MAX fails, and
# the test then stops the node in immediate mode to go on.
$ENV{PGCTLTIMEOUT} = 40;

###########################################################################
# Certificates, repository server, client configuration
###########################################################################

my $certdir  = PgbrTest::tmpdir('certs');
my $ca       = PgbrTest::make_ca($certdir, 'ca');
my $srv_cert = PgbrTest::make_cert($certdir, $ca, 'backup-srv', server => 1);
my $pg1      = PgbrTest::make_cert($certdir, $ca, 'pg1-srv');
my $intruder = PgbrTest::make_cert($certdir, $ca, 'intruder');

my $server = PgbrTest::start_server(
	cert      => $srv_cert,
	ca        => $ca,
	auth      => ['pg1-srv=demo'],
	log_level => 'detail');
note 'pgbr-server pid ' . $server->pid . ' port ' . $server->port;

my $confdir = PgbrTest::tmpdir('conf');
my $getdir  = PgbrTest::tmpdir('get');

# Writes the client configuration of a node (the file its extension reads
# and the tool uses).  %over: port, cert.
sub write_client_conf
{
	my ($path, $node, %over) = @_;
	return PgbrTest::client_conf(
		$path,
		host     => 'localhost',
		port     => defined $over{port} ? $over{port} : $server->port,
		cert     => $over{cert} || $pg1,
		ca       => $ca,
		sections => {
			demo => {
				PgbrTest::pg1_options($node),
			}
		});
}

sub archiving_conf
{
	my ($conf) = @_;
	return qq(
archive_mode = on
archive_library = 'pgbr'
pgbr.config = '$conf'
pgbr.stanza = 'demo'
wal_keep_size = '2GB'
max_wal_size = '1GB'
log_min_messages = info
);
}

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
my $conf = "$confdir/pg1.conf";
write_client_conf($conf, $primary);
$primary->append_conf('postgresql.conf', archiving_conf($conf));
$primary->start;

###########################################################################
# Helpers
###########################################################################

sub sql
{
	my ($node, $query) = @_;
	return $node->safe_psql('postgres', $query);
}

sub status_dir { return $_[0]->data_dir . '/pg_wal/archive_status'; }

# Names of the segments (and other WAL files) marked .ready, sorted.
sub ready_files
{
	my ($node) = @_;
	opendir(my $dh, status_dir($node)) or die "opendir: $!";
	my @r = sort map { /^(.*)\.ready$/ ? $1 : () } readdir($dh);
	closedir $dh;
	return @r;
}

sub has_status
{
	my ($node, $name, $status) = @_;
	return -e status_dir($node) . "/$name.$status";
}

sub archiver_stats
{
	my ($node) = @_;
	my ($archived, $failed, $last_failed) = split /\|/,
	  sql($node,
		'SELECT archived_count, failed_count, coalesce(last_failed_wal, \'\') FROM pg_stat_archiver'
	  ), -1;
	return { archived => $archived, failed => $failed,
		last_failed => $last_failed };
}

sub archiver_pid
{
	my ($node) = @_;
	return sql($node,
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'archiver'");
}

# Polls until no .ready file is left.  With $wake, sends SIGHUP to the
# cluster every 5 s (see the note at the top).  Returns true on success.
sub wait_archived
{
	my ($node, $timeout, $wake) = @_;
	my $deadline  = time() + $timeout;
	my $next_wake = time() + 5;
	while (1)
	{
		my @ready = ready_files($node);
		return 1 unless @ready;
		if (time() > $deadline)
		{
			diag 'still .ready after ' . $timeout . 's: ' . join(' ', @ready);
			return 0;
		}
		if ($wake && time() >= $next_wake)
		{
			sql($node, 'SELECT pg_reload_conf()');
			$next_wake = time() + 5;
		}
		usleep(200_000);
	}
}

# Polls $cond->() every 0.2 s until true or $timeout seconds pass.
sub wait_until { return PgbrTest::wait_until(@_); }

# SQL that writes some WAL then completes a segment, $n times; each
# SELECT prints the name of the segment it completed.
sub burst_sql
{
	my ($n, $pause) = @_;
	my $one =
	    "INSERT INTO burst SELECT g, md5(random()::text) FROM generate_series(1, 500) g;\n"
	  . ($pause ? "SELECT pg_sleep($pause) \\g /dev/null\n" : '')
	  . "SELECT pg_walfile_name(pg_switch_wal());\n";
	return $one x $n;
}

sub switch_segments
{
	my ($node, $n) = @_;
	my @names = split /\n/, sql($node, burst_sql($n));
	return @names;
}

sub sha256_file
{
	my ($path) = @_;
	return Digest::SHA->new(256)->addfile($path, 'b')->hexdigest;
}

# SHA-256 of each segment in pg_wal, taken once the segment is complete
# (its .ready or .done exists).  wal_keep_size keeps them all in pg_wal.
sub wal_sums
{
	my ($node, @names) = @_;
	my %sum;
	foreach my $n (@names)
	{
		wait_until(30,
			sub { has_status($node, $n, 'ready') || has_status($node, $n, 'done') })
		  or die "segment $n never completed";
		$sum{$n} = sha256_file($node->data_dir . "/pg_wal/$n");
	}
	return \%sum;
}

# archive-get each segment; returns the number that came back identical
# (the first failures are shown with diag, all are in the test's log).
sub retrieve_all
{
	my ($sums, $config) = @_;
	$config ||= $conf;
	my ($good, $bad) = (0, 0);
	foreach my $n (sort keys %$sums)
	{
		my $dest = "$getdir/$n";
		unlink $dest;
		my ($rc, $out, $err) = PgbrTest::run_pgbr("--config=$config",
			'--stanza=demo', 'archive-get', $n, $dest);
		my $why;
		if (!defined $rc || $rc != 0)
		{
			$why = 'exit ' . ($rc // 'none (timeout)') . "\n$err";
		}
		elsif (!-f $dest)
		{
			$why = "exit 0 but no file at $dest";
		}
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
	diag "archive-get failed for $bad of " . scalar(keys %$sums) . ' segments'
	  if $bad;
	return $good;
}

sub read_raw
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or die "open $path: $!";
	local $/;
	my $data = <$fh>;
	close $fh;
	return $data;
}

# The PostgreSQL log of a node from an offset.
sub node_log
{
	my ($node, $off) = @_;
	return slurp_file($node->logfile, $off);
}

# Its last lines, without the statements the test ran (for diagnostics).
sub node_log_tail
{
	my ($node, $off) = @_;
	my @l = grep { !/statement: / } split /\n/, node_log($node, $off);
	@l = @l[-40 .. -1] if @l > 40;
	return join("\n", @l);
}

# Stops a node with pg_ctl -m fast and returns the seconds it took, or
# undef if pg_ctl gave up; then the node is stopped in immediate mode.
sub timed_fast_stop
{
	my ($node) = @_;
	my $t0 = time();
	my $ok = $node->stop('fast', fail_ok => 1);
	my $took = time() - $t0;
	return $took if $ok;
	diag sprintf('pg_ctl stop -m fast gave up after %.1f s; stopping in immediate mode',
		$took);
	diag node_log_tail($node);
	$node->stop('immediate');
	return undef;
}

###########################################################################
# Setup: extension, stanza, pgbr_check()
###########################################################################

sql($primary, 'CREATE EXTENSION pgbr');
like(sql($primary, 'SELECT pgbr_stanza_create()'),
	qr/demo/, 'pgbr_stanza_create() succeeds on the primary');
like(sql($primary, 'SELECT pgbr_check()'),
	qr/successfully archived/, 'pgbr_check() reports the segment archived');
sql($primary, 'CREATE TABLE burst (i int, t text)');

###########################################################################
# 1. stanza-create is idempotent; another cluster cannot take the stanza
###########################################################################

like(sql($primary, 'SELECT pgbr_stanza_create()'),
	qr/demo/, 'a second pgbr_stanza_create() on the same cluster succeeds');

my $other = PostgreSQL::Test::Cluster->new('other');
$other->init(allows_streaming => 1);
my $other_conf = "$confdir/other.conf";
write_client_conf($other_conf, $other);
$other->append_conf('postgresql.conf', archiving_conf($other_conf));
$other->start;
isnt(
	sql($other, 'SELECT system_identifier FROM pg_control_system()'),
	sql($primary, 'SELECT system_identifier FROM pg_control_system()'),
	'the second cluster has another system identifier');
sql($other, 'CREATE EXTENSION pgbr');
my ($rc, $out, $err) = $other->psql('postgres', 'SELECT pgbr_stanza_create()');
isnt($rc, 0, 'pgbr_stanza_create() fails on the second cluster');
like($err, qr/another cluster/,
	'its error says the stanza belongs to another cluster')
  or diag "stderr: $err";

###########################################################################
# 2. A burst of segments: all archived, all retrievable, byte-identical
###########################################################################

my $t0    = time();
my @burst = switch_segments($primary, $BURST);
is(scalar(@burst), $BURST, "$BURST segments completed");
is(scalar(keys %{ { map { $_ => 1 } @burst } }), $BURST, 'with distinct names');
my $sums = wal_sums($primary, @burst);

ok(wait_archived($primary, $ARCHIVE_WAIT), 'no .ready file left after the burst');
note sprintf('burst of %d segments archived in %.1f s', $BURST, time() - $t0);
is(scalar(grep { has_status($primary, $_, 'done') } @burst),
	$BURST, 'every segment of the burst is marked .done');
is(archiver_stats($primary)->{failed}, 0, 'the archiver had no failure');
is(retrieve_all($sums), $BURST,
	'archive-get returns every segment of the burst, identical to pg_wal');

# a segment the repository does not have
my $missing = '00000001000000AA000000FE';
($rc, $out, $err) = PgbrTest::run_pgbr("--config=$conf", '--stanza=demo',
	'archive-get', $missing, "$getdir/$missing");
is($rc, 1, 'archive-get of a segment not in the repository exits 1');
unlike($err, qr/ERROR/, 'without an ERROR line');
my @errlines = grep { /\S/ } split /\n/, $err;
ok((@errlines <= 1 && !(grep { !/INFO/ } @errlines)),
	'stderr has at most one INFO line') or diag "stderr: $err";
ok(!-e "$getdir/$missing", 'and no file was written');

###########################################################################
# 3. The server is killed (kill -9, with its session processes) mid-burst
###########################################################################

# Children of a process, from /proc.
sub child_pids
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $dh, '/proc') or return ();
	foreach my $p (grep { /^\d+$/ } readdir $dh)
	{
		open my $fh, '<', "/proc/$p/stat" or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/;
		push @kids, $p if $1 == $ppid;
	}
	closedir $dh;
	return @kids;
}

my $before = archiver_stats($primary)->{archived};
my ($bout, $berr) = ('', '');
my $script = "$confdir/crash-burst.sql";
{
	open my $fh, '>', $script or die "$script: $!";
	print $fh burst_sql($CRASH_BURST, 0.1);
	close $fh or die "$script: $!";
}
# psql reads the script from a file: it runs while we watch the archiver
my $psql = IPC::Run::start(
	[
		'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1',
		'-d', $primary->connstr('postgres'), '-f', $script
	],
	'<', \undef, '>', \$bout, '2>', \$berr,
	IPC::Run::timeout(120));

ok( wait_until(60,
		sub { archiver_stats($primary)->{archived} >= $before + 5 }),
	'archiving of the second burst is under way');

# A crash of the whole server: stop the listener so that it cannot fork
# any more, kill its session processes (one serves the archiver) and it.
my $srv_pid = $server->pid;
kill 'STOP', $srv_pid;
my @sessions = child_pids($srv_pid);
note "killing pgbr-server pid $srv_pid and its sessions @sessions";
kill 'KILL', @sessions if @sessions;
is($server->kill9, 137, 'pgbr-server killed with SIGKILL');
my $generating = $psql->pumpable;
my @ready_at_kill = ready_files($primary);
ok($generating || @ready_at_kill,
	'the server died while the burst was still being generated or archived');
note 'at the kill: burst ' . ($generating ? 'still running' : 'generated')
  . ', ' . scalar(@ready_at_kill) . ' segment(s) waiting';

$psql->finish;
my @crash_burst = split /\n/, $bout;
is(scalar(@crash_burst), $CRASH_BURST, "$CRASH_BURST segments completed")
  or diag "psql stderr: $berr";
my $crash_sums = wal_sums($primary, @crash_burst);

$server->restart;
note 'pgbr-server restarted, pid ' . $server->pid . ' port ' . $server->port;
$t0 = time();
ok(wait_archived($primary, $ARCHIVE_WAIT, 1),
	'the archiver catches up after the server restarted');
note sprintf('caught up in %.1f s', time() - $t0);
is(scalar(grep { has_status($primary, $_, 'done') } @crash_burst),
	$CRASH_BURST, 'every segment of the crash burst is marked .done');
is(retrieve_all($crash_sums), $CRASH_BURST,
	'every segment of the crash burst is retrievable and identical');

###########################################################################
# 4. The server is down when archiving starts
###########################################################################

is($server->stop, 0, 'pgbr-server stopped');
my $stats0   = archiver_stats($primary);
my $arch_pid = archiver_pid($primary);
ok($arch_pid =~ /^\d+$/, "archiver pid $arch_pid");
my $logoff = -s $primary->logfile;

my @down = switch_segments($primary, 5);
my $down_sums = wal_sums($primary, @down);
sleep 10;
is(scalar(grep { has_status($primary, $_, 'ready') && -f $primary->data_dir . "/pg_wal/$_" } @down),
	5, 'the 5 segments stay in pg_wal, marked .ready');
cmp_ok(archiver_stats($primary)->{failed}, '>', $stats0->{failed},
	'pg_stat_archiver.failed_count grows');
is(archiver_pid($primary), $arch_pid,
	'the archiver process is still the same after 10 s of failures');
like(node_log($primary, $logoff), qr/WARNING:.*(connect|refused|reach)/i,
	'the PostgreSQL log says why (connection to the repository)');

$server->restart;
ok(wait_archived($primary, $ARCHIVE_WAIT, 1),
	'all archived once the server is back');
is(retrieve_all($down_sums), 5, 'and retrievable, identical');

###########################################################################
# 5. A repository that accepts TCP and never answers: shutdown stays fast
###########################################################################

my $silent_port = PgbrTest::free_port();
my $silent_sock = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => $silent_port,
	Proto     => 'tcp',
	Listen    => 16,
	ReuseAddr => 1) or die "listen on $silent_port: $!";
my $accepted_file = "$confdir/silent-accepted";
my $silent_pid    = fork();
die "fork: $!" unless defined $silent_pid;
if ($silent_pid == 0)
{
	# accepts, never reads nor writes; keeps every connection open
	my @keep;
	while (my $c = $silent_sock->accept)
	{
		push @keep, $c;
		if (open my $fh, '>>', $accepted_file)
		{
			print $fh "accepted\n";
			close $fh;
		}
	}
	sleep 3600 while 1;
	POSIX::_exit(0);
}
close $silent_sock;
note "silent listener pid $silent_pid on port $silent_port";

write_client_conf($conf, $primary, port => $silent_port);
sql($primary, 'SELECT pg_reload_conf()');
my ($silent_seg) = switch_segments($primary, 1);
my $contacted = wait_until(10, sub { -s $accepted_file });
ok($contacted,
	'after pg_reload_conf() the archiver uses the new repo1-host-port')
  or diag 'the silent listener got no connection';
sleep 2;
ok(has_status($primary, $silent_seg, 'ready'),
	"segment $silent_seg is not archived (still .ready)")
  or diag 'it was archived through the session opened with the previous configuration';
if (!$contacted)
{
	# Go on with the shutdown test anyway: end the archiver's session from
	# the server side, so that it has to connect with the new configuration.
	note 'restarting pgbr-server to end the archiver\'s old session';
	$server->restart;
	($silent_seg) = switch_segments($primary, 1);
	ok(wait_until(15, sub { -s $accepted_file }),
		'with its old session gone, the archiver connects to the silent server');
	sleep 2;
}

my $stop_time = timed_fast_stop($primary);
ok(defined $stop_time && $stop_time < $STOP_MAX,
	sprintf('with a silent repository, pg_ctl stop -m fast completes in < %d s (%s)',
		$STOP_MAX, defined $stop_time ? sprintf('%.1f s', $stop_time) : 'did not'));

kill 'KILL', $silent_pid;
waitpid($silent_pid, 0);
write_client_conf($conf, $primary);
$primary->start;
ok(wait_archived($primary, $ARCHIVE_WAIT, 1),
	'after a restart with the real server, the segment is archived');

###########################################################################
# 6. Other cluster refused; same segment twice: same content ok, different
#    content refused
###########################################################################

my $other_off = -s $other->logfile;
sql($other, 'CREATE TABLE burst (i int, t text)');
my ($other_seg) = switch_segments($other, 1);
ok( wait_until($LOG_WAIT,
		sub { archiver_stats($other)->{failed} > 0 }),
	'the other cluster fails to archive to stanza demo');
ok(has_status($other, $other_seg, 'ready'), "its segment $other_seg stays .ready");
ok( wait_until($LOG_WAIT,
		sub { node_log($other, $other_off) =~ /another cluster/ }),
	'its log says the WAL is from another cluster')
  or diag node_log_tail($other, $other_off);
# the primary archived a segment of the same name long ago: the repository
# must still have the primary's, not the other cluster's
my $other_sum = sha256_file($other->data_dir . "/pg_wal/$other_seg");
($rc) = PgbrTest::run_pgbr("--config=$conf", '--stanza=demo',
	'archive-get', $other_seg, "$getdir/other-$other_seg");
ok( defined $rc && $rc == 0
	  && sha256_file("$getdir/other-$other_seg") ne $other_sum,
	"the repository serves the primary's $other_seg, not the other cluster's");
$other->stop('immediate');

# An already archived segment of the primary, still in pg_wal.
sql($primary, 'CHECKPOINT');
my $dup = $burst[5];
my $dup_path = $primary->data_dir . "/pg_wal/$dup";
ok(-f $dup_path && has_status($primary, $dup, 'done'),
	"segment $dup is archived and still in pg_wal");

# same content: the archiver pushes it again and succeeds
my $stats1  = archiver_stats($primary);
my $srv_off = $server->log_size;
rename(status_dir($primary) . "/$dup.done", status_dir($primary) . "/$dup.ready")
  or die "rename: $!";
sql($primary, 'SELECT pg_reload_conf()');
ok(wait_archived($primary, 30, 1), "re-pushed $dup with the same content: archived");
ok(has_status($primary, $dup, 'done'), "$dup is .done again");
my $stats2 = archiver_stats($primary);
is($stats2->{failed}, $stats1->{failed}, 'no failure counted');
cmp_ok($stats2->{archived}, '>', $stats1->{archived}, 'archived_count grows');
ok( defined $server->wait_for_log(
		[ qr/\Q$dup\E/, qr/already archived with the same checksum/ ],
		$srv_off, $LOG_WAIT),
	'the server saw the second push and found it identical')
  or diag $server->log_content($srv_off);

# different content: change one byte in the middle of the segment (it is
# older than the last checkpoint's redo point, so the cluster does not need
# it any more: only wal_keep_size keeps it, and no standby reads it)
my $orig = read_raw($dup_path);
{
	my $bad = $orig;
	my $pos = int(length($bad) / 2) + 123;
	substr($bad, $pos, 1) = chr(ord(substr($bad, $pos, 1)) ^ 0xff);
	open my $fh, '+<:raw', $dup_path or die "open $dup_path: $!";
	print $fh $bad;
	close $fh or die "close: $!";
}
my $off_pg = -s $primary->logfile;
$stats1  = archiver_stats($primary);
$srv_off = $server->log_size;
rename(status_dir($primary) . "/$dup.done", status_dir($primary) . "/$dup.ready")
  or die "rename: $!";
sql($primary, 'SELECT pg_reload_conf()');
ok( wait_until($LOG_WAIT,
		sub { archiver_stats($primary)->{failed} > $stats1->{failed} }),
	"re-pushed $dup with different content: the archiver fails");
ok(has_status($primary, $dup, 'ready'), "$dup stays .ready");
ok( wait_until($LOG_WAIT,
		sub { node_log($primary, $off_pg) =~ /\Q$dup\E.*different checksum/ }),
	'the PostgreSQL log says it exists with a different checksum')
  or diag node_log_tail($primary, $off_pg);
ok( defined $server->wait_for_log(
		[ qr/\Q$dup\E/, qr/different checksum/ ], $srv_off, $LOG_WAIT),
	'the server log says so too')
  or diag $server->log_content($srv_off);
is(retrieve_all({ $dup => $sums->{$dup} }), 1,
	'the repository still has the original content');

# put the original back: the next attempt succeeds
{
	open my $fh, '+<:raw', $dup_path or die "open $dup_path: $!";
	print $fh $orig;
	close $fh or die "close: $!";
}
ok(wait_archived($primary, $ARCHIVE_WAIT, 1),
	'with the original content back, the segment is archived');

###########################################################################
# 7. A client certificate not authorised for the stanza
###########################################################################

write_client_conf($conf, $primary, cert => $intruder);
sql($primary, 'SELECT pg_reload_conf()');
$off_pg  = -s $primary->logfile;
$srv_off = $server->log_size;
$stats1  = archiver_stats($primary);
my ($intr_seg) = switch_segments($primary, 1);
my $refused = wait_until($LOG_WAIT,
	sub { archiver_stats($primary)->{failed} > $stats1->{failed} });
ok($refused,
	'after pg_reload_conf() with the intruder certificate, archiving fails');
if (!$refused)
{
	diag "$intr_seg was archived through the session opened with pg1-srv";
	# go on with a session that must use the intruder certificate
	note 'restarting pgbr-server to end the archiver\'s old session';
	$server->restart;
	$srv_off = $server->log_size;
	$stats1  = archiver_stats($primary);
	($intr_seg) = switch_segments($primary, 1);
	ok( wait_until($LOG_WAIT,
			sub { archiver_stats($primary)->{failed} > $stats1->{failed} }),
		'with its old session gone, archiving with the intruder certificate fails');
}
ok(has_status($primary, $intr_seg, 'ready'), "segment $intr_seg stays .ready");
ok( wait_until($LOG_WAIT,
		sub { node_log($primary, $off_pg) =~ /not authori[sz]ed/ }),
	'the PostgreSQL log says "not authorized"')
  or diag node_log_tail($primary, $off_pg);
ok( defined $server->wait_for_log(
		[ qr/intruder/, qr/not authori[sz]ed/ ], $srv_off, $LOG_WAIT),
	'the pgbr-server log names CN "intruder"')
  or diag $server->log_content($srv_off);

write_client_conf($conf, $primary);
sql($primary, 'SELECT pg_reload_conf()');
ok(wait_archived($primary, $ARCHIVE_WAIT, 1),
	'with the pg1-srv certificate back, the segment is archived');
like(archiver_pid($primary), qr/^\d+$/, 'the archiver is running');

###########################################################################
# Last: a fast shutdown with a healthy repository.  PostgreSQL completes a
# last segment at shutdown; the archiver pushes it and must still notice
# the postmaster's request to stop (SIGUSR2 sets its latch).

sql($primary, 'INSERT INTO burst VALUES (0, \'last\')');
$stop_time = timed_fast_stop($primary);
ok(defined $stop_time && $stop_time < $STOP_MAX,
	sprintf('with a healthy repository, pg_ctl stop -m fast completes in < %d s (%s)',
		$STOP_MAX, defined $stop_time ? sprintf('%.1f s', $stop_time) : 'did not'));
is(scalar(ready_files($primary)), 0, 'the last segment was archived at shutdown');
is($server->stop, 0, 'pgbr-server stops cleanly');

done_testing();
